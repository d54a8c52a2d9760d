"""Apache Kafka 4 in KRaft mode (one combined broker and controller), from Maven Central jars.

Clients log in with SCRAM-SHA-512 on the one client listener (SASL_PLAINTEXT on loopback) and
KRaft's StandardAuthorizer denies what no ACL allows; the operator principal is the super user
the broker itself logs in as (to its controller with PLAIN, whose one user the configuration
holds). The operator's SCRAM credential is written when the storage is formatted; a data
folder formatted before SASL is upgraded once, keeping its data: the broker runs with PLAIN
also accepted for the operator on the client listener, the credential is added, and it stops.
Every other principal's credential is set once the broker is healthy (``ensure_principals``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient

from ops.exceptions import OpsError, StackError
from ops.kafka_access import ensure_principals, upsert_credentials
from ops.stack.base import Server, maven
from topology.access import OPERATOR
from topology.kafka_client import SCRAM_MECHANISM, client_config, password_for, security_record
from topology.settings import PROJECT_ROOT

POM = PROJECT_ROOT / "ops" / "kafka" / "pom.xml"
LOG_CONFIG = PROJECT_ROOT / "ops" / "kafka" / "log4j2.properties"
MIN_JAVA = 17
#: In the data folder once the operator's SCRAM credential is in the metadata (formatted or upgraded).
SCRAM_MARKER = "shopstream-scram"
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule"
PLAIN_LOGIN = "org.apache.kafka.common.security.plain.PlainLoginModule"


def java_binary(server: str = "kafka") -> str:
    """The java on JAVA_HOME or PATH, at least version 17, or a StackError (for ``server``) naming the fix."""
    import os

    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home and (Path(home) / "bin" / "java").exists() else shutil.which("java")
    fix = "install a Java 17+ runtime (apt-get install -y openjdk-17-jre-headless) or point JAVA_HOME at one"
    if java is None:
        raise StackError(server, "no java found on JAVA_HOME or PATH", fix)
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)', out.stderr + out.stdout)
    if match is None or int(match.group(1)) < MIN_JAVA:
        raise StackError(server, f"{java} is not Java {MIN_JAVA}+: {out.stderr.strip()[:120]}", fix)
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
        self.libs.mkdir(parents=True, exist_ok=True)
        maven(
            "kafka",
            POM,
            [
                "dependency:copy-dependencies",
                f"-Dkafka.version={self.settings.kafka_version}",
                f"-DoutputDirectory={self.libs}",
                "-DincludeScope=runtime",
            ],
            self.settings.install_timeout_s,
            "fetching the broker jars failed",
            "check that Maven Central is reachable, then run `shopstream stack up` again",
        )
        (self.libs / ".complete").write_text(self.settings.kafka_version)

    @property
    def upgrade_config_file(self) -> Path:
        return self.paths.run / "kafka-upgrade.properties"

    def write_config(self, path: Path | None = None, operator_plain: bool = False) -> None:
        """The broker's configuration; ``operator_plain`` also lets the operator in with PLAIN (the upgrade)."""
        s = self.settings
        path = path or self.config_file
        secret = password_for(s, OPERATOR)
        plain_user = f'{PLAIN_LOGIN} required username="{OPERATOR}" password="{secret}" user_{OPERATOR}="{secret}";'
        mechanisms = f"{SCRAM_MECHANISM},PLAIN" if operator_plain else SCRAM_MECHANISM
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.chmod(0o600)  # it holds the operator's password
        path.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@{s.host}:{s.kafka_controller_port}",
                    f"listeners=CLIENT://{s.host}:{s.kafka_port},CONTROLLER://{s.host}:{s.kafka_controller_port}",
                    f"advertised.listeners=CLIENT://{s.host}:{s.kafka_port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=CLIENT",
                    "listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,CLIENT:SASL_PLAINTEXT",
                    f"listener.name.client.sasl.enabled.mechanisms={mechanisms}",
                    f"sasl.mechanism.inter.broker.protocol={SCRAM_MECHANISM}",
                    f"listener.name.client.{SCRAM_MECHANISM.lower()}.sasl.jaas.config={SCRAM_LOGIN} required "
                    f'username="{OPERATOR}" password="{secret}";',
                    *([f"listener.name.client.plain.sasl.jaas.config={plain_user}"] if operator_plain else []),
                    # KRaft controllers cannot use SCRAM (its credentials live in the metadata they serve).
                    "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
                    "sasl.mechanism.controller.protocol=PLAIN",
                    f"listener.name.controller.plain.sasl.jaas.config={plain_user}",
                    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                    "allow.everyone.if.no.acl.found=false",
                    f"super.users=User:{OPERATOR}",
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
        security_record(self.settings).write_text("sasl\n")
        if (self.data_dir / "meta.properties").exists():
            if not (self.data_dir / SCRAM_MARKER).exists():
                self.upgrade()
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        scram = f"{SCRAM_MECHANISM}=[name={OPERATOR},password={password_for(self.settings, OPERATOR)}]"
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
                "--add-scram",
                scram,
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
        (self.data_dir / SCRAM_MARKER).write_text(f"{OPERATOR}\n")

    def upgrade(self) -> None:
        """Add the operator's SCRAM credential to a folder formatted before SASL; its data stays."""
        self.write_config(self.upgrade_config_file, operator_plain=True)
        with self.log_file.open("ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S')} upgrading {self.name} to SASL\n".encode())
            log.flush()
            proc = subprocess.Popen(
                self.command(self.upgrade_config_file),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.data_dir,
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        fix = (
            f"read the log ({self.log_file}); the data folder {self.data_dir} is untouched: "
            "run `shopstream stack up` again"
        )
        try:
            admin = AdminClient(
                {
                    **client_config(self.settings, OPERATOR),
                    "sasl.mechanism": "PLAIN",
                    "sasl.username": OPERATOR,
                    "socket.connection.setup.timeout.ms": 1000,
                    "log_level": 0,
                }
            )
            deadline = time.monotonic() + self.settings.health_timeout_s
            while True:
                if proc.poll() is not None:
                    raise StackError(self.name, "the broker exited while being upgraded to SASL", fix)
                try:
                    if admin.list_topics(timeout=1.5).brokers:
                        break
                except Exception:  # noqa: BLE001, S110 - not answering yet
                    pass
                if time.monotonic() > deadline:
                    raise StackError(self.name, "the broker did not come up to be upgraded to SASL", fix)
                time.sleep(0.3)
            try:
                upsert_credentials(admin, {OPERATOR: password_for(self.settings, OPERATOR)})
            except OpsError as err:
                raise StackError(self.name, f"adding the operator's SCRAM credential failed: {err}", fix) from None
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
            self.pid_file.unlink(missing_ok=True)
            self.upgrade_config_file.unlink(missing_ok=True)
        (self.data_dir / SCRAM_MARKER).write_text(f"{OPERATOR}\n")

    def command(self, config: Path | None = None) -> list[str]:
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
            str(config or self.config_file),
        ]

    def after_healthy(self) -> None:
        try:
            ensure_principals(self.settings)
        except OpsError as err:
            raise StackError(self.name, f"creating the principals failed: {err}", "read the message") from None

    def refresh(self) -> None:
        """A broker found running gets the principals declared since it started (a new process's, as sink-logs)."""
        if self.pid() is None:  # never a broker this launcher did not start
            return
        try:
            ensure_principals(self.settings, missing_only=True)
        except OpsError as err:
            raise StackError(self.name, f"creating the principals failed: {err}", "read the message") from None

    def healthy(self) -> bool:
        admin = AdminClient(
            {**client_config(self.settings, OPERATOR), "socket.connection.setup.timeout.ms": 1000, "log_level": 0}
        )
        try:
            meta = admin.list_topics(timeout=1.5)
        except Exception:  # noqa: BLE001 - any failure means "not healthy yet"
            return False
        return bool(meta.brokers)
