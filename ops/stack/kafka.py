"""Apache Kafka 4 in KRaft mode (one combined broker and controller), from Maven Central jars."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient

from ops.exceptions import StackError
from ops.stack.base import Server
from topology.settings import PROJECT_ROOT

POM = PROJECT_ROOT / "ops" / "kafka" / "pom.xml"
LOG_CONFIG = PROJECT_ROOT / "ops" / "kafka" / "log4j2.properties"
MIN_JAVA = 17


def java_binary() -> str:
    """The java on JAVA_HOME or PATH, at least version 17, or a StackError naming the fix."""
    import os

    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home and (Path(home) / "bin" / "java").exists() else shutil.which("java")
    fix = "install a Java 17+ runtime (apt-get install -y openjdk-17-jre-headless) or point JAVA_HOME at one"
    if java is None:
        raise StackError("kafka", "no java found on JAVA_HOME or PATH", fix)
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)', out.stderr + out.stdout)
    if match is None or int(match.group(1)) < MIN_JAVA:
        raise StackError("kafka", f"{java} is not Java {MIN_JAVA}+: {out.stderr.strip()[:120]}", fix)
    return java


class Kafka(Server):
    name = "kafka"

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.settings.kafka_port, self.settings.kafka_controller_port)

    @property
    def address(self) -> str:
        return self.settings.bootstrap_servers

    @property
    def libs(self) -> Path:
        return self.paths.tools / f"kafka-{self.settings.kafka_version}" / "libs"

    @property
    def config_file(self) -> Path:
        return self.paths.run / "kafka-server.properties"

    def install(self) -> None:
        java_binary()
        if (self.libs / ".complete").exists():
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise StackError(
                "kafka",
                "Maven (mvn) is missing, so the broker jars cannot be fetched",
                "install Maven (apt-get install -y maven)",
            )
        self.libs.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                f"-Dkafka.version={self.settings.kafka_version}",
                f"-DoutputDirectory={self.libs}",
                "-DincludeScope=runtime",
            ],
            capture_output=True,
            text=True,
            timeout=self.settings.install_timeout_s,
            check=False,
        )
        if proc.returncode != 0:
            raise StackError(
                "kafka",
                f"fetching the broker jars failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}",
                "check that Maven Central is reachable, then run `shopstream stack up` again",
            )
        (self.libs / ".complete").write_text(self.settings.kafka_version)

    def write_config(self) -> None:
        s = self.settings
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@{s.host}:{s.kafka_controller_port}",
                    f"listeners=PLAINTEXT://{s.host}:{s.kafka_port},CONTROLLER://{s.host}:{s.kafka_controller_port}",
                    f"advertised.listeners=PLAINTEXT://{s.host}:{s.kafka_port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    f"log.dirs={self.data_dir}",
                    "num.partitions=3",
                    "auto.create.topics.enable=false",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=10",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "transaction.state.log.num.partitions=10",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "log.flush.interval.messages=10000",
                    # Two cores: no more network and I/O threads than there are cores to run them.
                    "num.network.threads=2",
                    "num.io.threads=2",
                    "",
                ]
            )
        )

    def prepare(self) -> None:
        self.write_config()
        self.refuse_unknown_folder("meta.properties")
        if (self.data_dir / "meta.properties").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [
                java_binary(),
                "-cp",
                f"{self.libs}/*",
                f"-Dlog4j2.configurationFile={LOG_CONFIG}",
                "kafka.tools.StorageTool",
                "format",
                "-t",
                uuid.uuid4().hex[:22],
                "-c",
                str(self.config_file),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            raise StackError(
                "kafka",
                f"formatting the KRaft storage failed:\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}",
                f"read the message; the data folder is {self.data_dir}",
            )

    def command(self) -> list[str]:
        return [
            java_binary(),
            f"-Xmx{self.settings.kafka_heap}",
            f"-Xms{self.settings.kafka_heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG_CONFIG}",
            f"-Dshopstream.data={self.data_dir}",
            "-cp",
            f"{self.libs}/*",
            "kafka.Kafka",
            str(self.config_file),
        ]

    def healthy(self) -> bool:
        admin = AdminClient(
            {"bootstrap.servers": self.address, "socket.connection.setup.timeout.ms": 1000, "log_level": 0}
        )
        try:
            meta = admin.list_topics(timeout=1.5)
        except Exception:  # noqa: BLE001 - any failure means "not healthy yet"
            return False
        return bool(meta.brokers)
