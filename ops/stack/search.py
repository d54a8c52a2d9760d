"""Elasticsearch 8 (one node) on the machine's Java 17, from Maven Central jars and code of our own.

Maven Central serves Elasticsearch's server and its Netty transport, not the distribution's
modules nor its start-up scripts, so ``ops/search`` holds what we add: a launcher (a node whose
plugins are classes on the class path) and a plugin with the analysis and ``GET /`` the
missing modules would give. ``install`` builds it with Maven and copies the server's jars
beside it, once per version and again only when a source file is newer than the built jar.
The node binds loopback only, discovers no other node, and keeps its data in the stack folder.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import httpx

from ops.exceptions import StackError
from ops.stack.base import Server, maven
from ops.stack.kafka import java_binary
from topology.settings import PROJECT_ROOT

SOURCE = PROJECT_ROOT / "ops" / "search"
POM = SOURCE / "pom.xml"
LOG_CONFIG = SOURCE / "log4j2.properties"
#: The server the launcher and plugin are compiled against (the pom's default too).
VERSION = "8.19.21"
MAIN_CLASS = "dev.shopstream.search.Main"
#: In the data folder once a node has used it (Elasticsearch's own lock file).
DATA_MARKER = "node.lock"
#: In a data folder the stand-in search server (noida-db) used before this node.
NOIDA_MARKER = "noida.control.json"
#: Two private stacks (tests) may build into the shared tools folder at once.
_ONE_BUILD = threading.Lock()


def sources() -> list[Path]:
    """Every file the built jar is made from."""
    return [POM, *sorted((SOURCE / "src").rglob("*.java"))]


class Search(Server):
    name = "search"

    @property
    def ports(self) -> tuple[int, ...]:
        # The transport port (node to node) is an ephemeral one: a single node is never joined.
        return (self.settings.search_port,)

    @property
    def address(self) -> str:
        return self.settings.search_url

    @property
    def home(self) -> Path:
        return self.paths.tools / f"elasticsearch-{VERSION}"

    @property
    def libs(self) -> Path:
        return self.home / "libs"

    @property
    def jar(self) -> Path:
        return self.home / "build" / "shopstream-search.jar"

    @property
    def config_dir(self) -> Path:
        return self.paths.run / self.name

    @property
    def class_archive(self) -> Path:
        """The classes the node loads, archived by the JVM (AppCDS) for the jar as built: a start maps them in."""
        built = self.jar.stat()
        return self.home / f"classes-{built.st_mtime_ns}-{built.st_size}.jsa"

    @property
    def own_class_archive(self) -> Path:
        """Where this stack's node writes the archive when it exits, while there is none yet."""
        return self.config_dir / self.class_archive.name

    def built(self) -> bool:
        """The server's jars are here and our jar is newer than every source file."""
        if not (self.libs / ".complete").exists() or not self.jar.exists():
            return False
        return self.jar.stat().st_mtime >= max(f.stat().st_mtime for f in sources())

    def install(self) -> None:
        java_binary(self.name)
        with _ONE_BUILD:
            if self.built():
                return
            self.libs.mkdir(parents=True, exist_ok=True)
            maven(
                self.name,
                POM,
                [
                    f"-Delasticsearch.version={VERSION}",
                    f"-Dshopstream.build={self.jar.parent}",
                    f"-DoutputDirectory={self.libs}",
                    "-DincludeScope=runtime",
                    "package",
                    "dependency:copy-dependencies",
                ],
                self.settings.install_timeout_s,
                "building the search node failed",
                f"read the message (the sources are in {SOURCE}); Maven Central must be reachable",
            )
            (self.libs / ".complete").write_text(f"{VERSION}\n")
            self.jar.touch()  # built from the sources as they are now, even when Maven found nothing to compile
            for stale in self.home.glob("classes-*.jsa"):
                stale.unlink()

    def prepare(self) -> None:
        if (self.data_dir / NOIDA_MARKER).exists():
            raise StackError(
                self.name,
                f"{self.data_dir} holds the data of noida-db, the stand-in that served search before this node",
                f"move it aside (mv {self.data_dir} {self.data_dir}.noida-old) and run `shopstream stack up` again; "
                "nothing was deleted",
            )
        self.refuse_unknown_folder(DATA_MARKER)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "tmp").mkdir(parents=True, exist_ok=True)
        self.adopt_class_archive()
        shutil.copyfile(LOG_CONFIG, self.config_dir / "log4j2.properties")
        s = self.settings
        settings = {
            "cluster.name": "shopstream",
            "node.name": self.name,
            "path.home": self.config_dir,
            "path.data": self.data_dir,
            "path.logs": self.paths.logs,
            "network.host": s.host,
            "http.port": s.search_port,
            "transport.port": 0,
            "discovery.type": "single-node",
            # A development machine's disk is shared with everything else: never block writes for it.
            "cluster.routing.allocation.disk.threshold_enabled": "false",
        }
        (self.config_dir / "elasticsearch.yml").write_text("".join(f"{k}: {v}\n" for k, v in settings.items()))

    def adopt_class_archive(self) -> None:
        """Share the archive this stack's node wrote at its last clean exit (a rename: others see all or nothing)."""
        own = self.own_class_archive
        if own.exists():
            if self.class_archive.exists():
                own.unlink()
            else:
                own.replace(self.class_archive)

    def command(self) -> list[str]:
        heap = self.settings.search_heap
        if self.class_archive.exists():
            archive = f"-XX:SharedArchiveFile={self.class_archive}"
        else:
            archive = f"-XX:ArchiveClassesAtExit={self.own_class_archive}"
        return [
            java_binary(self.name),
            archive,
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-Xss1m",
            "-XX:-OmitStackTraceInFastThrow",
            "-Djava.awt.headless=true",
            "-Dfile.encoding=UTF-8",
            "-Djava.locale.providers=CLDR",
            f"-Djava.io.tmpdir={self.config_dir / 'tmp'}",
            "-Des.networkaddress.cache.ttl=60",
            "-Des.networkaddress.cache.negative.ttl=10",
            "-Dio.netty.noUnsafe=true",
            "-Dio.netty.noKeySetOptimization=true",
            "-Dio.netty.recycler.maxCapacityPerThread=0",
            "-Dlog4j.shutdownHookEnabled=false",
            "-Dlog4j2.disable.jmx=true",
            "-Dlog4j2.formatMsgNoLookups=true",
            f"-Dshopstream.data={self.data_dir}",
            "-cp",
            f"{self.libs}/*:{self.jar}",
            MAIN_CLASS,
            str(self.config_dir),
        ]

    def healthy(self) -> bool:
        """Every primary shard is allocated (yellow: a single node holds no replicas)."""
        try:
            answer = httpx.get(f"{self.address}/_cluster/health", params={"timeout": "1s"}, timeout=1.5)
        except httpx.HTTPError:
            return False
        return answer.status_code == 200 and answer.json().get("status") in ("green", "yellow")
