"""Prometheus and Alertmanager of the local stack, from Debian's packages, as our own instances.

Each runs with our configuration, on our ports, with its data under the stack folder; the
packages' system services are never used. Prometheus's configuration is generated
(``ops/scrape.py``); its rules are the repository's (``ops/prometheus/rules``), and so is
Alertmanager's configuration (``ops/alertmanager/alertmanager.yml``). ``stack up`` on a
running server rewrites what is generated and reloads both, so an edited rule is live
after it. Nothing of the system depends on them: the processes only answer scrapes.
"""

from __future__ import annotations

import httpx

from ops import scrape
from ops.exceptions import StackError
from ops.stack.apt import apt_install
from ops.stack.base import Server
from topology.settings import Settings

FALLBACK = "run without the local monitoring (the system does not need it)"


def promtool(settings: Settings) -> str:
    """Prometheus's own checker (``check rules``, ``test rules``), installed with the server's package."""
    return apt_install("prometheus", "prometheus", "promtool", settings.install_timeout_s, FALLBACK)


def amtool(settings: Settings) -> str:
    """Alertmanager's checker (``check-config``), installed with its package."""
    return apt_install("alertmanager", "prometheus-alertmanager", "amtool", settings.install_timeout_s, FALLBACK)


class _HttpServer(Server):
    """A server whose health is ``GET /-/ready`` and whose configuration reloads on ``POST /-/reload``."""

    @property
    def address(self) -> str:
        return f"http://{self.settings.host}:{self.ports[0]}"

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.address}/-/ready", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def reload(self) -> None:
        """Ask the running server to read its configuration again; a refused one is a StackError naming why."""
        try:
            answer = httpx.post(f"{self.address}/-/reload", timeout=10.0)
        except httpx.HTTPError as err:
            raise StackError(self.name, f"reload failed: {err}", f"`shopstream stack logs {self.name}`") from err
        if answer.status_code != 200:
            raise StackError(
                self.name,
                f"the server refused its new configuration: {answer.text.strip()[-800:]}",
                "fix the file it names (the running server keeps its previous configuration)",
            )


class Alertmanager(_HttpServer):
    name = "alertmanager"

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.settings.alertmanager_port,)

    def install(self) -> None:
        self.binary()

    def binary(self) -> str:
        return apt_install(
            self.name, "prometheus-alertmanager", "prometheus-alertmanager", self.settings.install_timeout_s, FALLBACK
        )

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [
            self.binary(),
            f"--config.file={scrape.ALERTMANAGER_CONFIG}",
            f"--storage.path={self.data_dir}",
            f"--web.listen-address={self.settings.host}:{self.settings.alertmanager_port}",
            "--cluster.listen-address=",  # one local instance: no gossip port
            "--log.level=warn",
        ]

    def refresh(self) -> None:
        if self.pid() is not None:  # never reload a server this launcher did not start
            self.reload()


class Prometheus(_HttpServer):
    name = "prometheus"

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.settings.prometheus_port,)

    def install(self) -> None:
        self.binary()

    def binary(self) -> str:
        return apt_install(self.name, "prometheus", "prometheus", self.settings.install_timeout_s, FALLBACK)

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        scrape.write_config(self.settings)
        scrape.prune(self.settings)

    def command(self) -> list[str]:
        return [
            self.binary(),
            f"--config.file={scrape.config_file(self.settings)}",
            f"--storage.tsdb.path={self.data_dir / 'tsdb'}",
            f"--storage.tsdb.retention.time={self.settings.prometheus_retention}",
            f"--web.listen-address={self.settings.host}:{self.settings.prometheus_port}",
            "--web.enable-lifecycle",  # POST /-/reload
            "--log.level=warn",
        ]

    def refresh(self) -> None:
        if self.pid() is not None:  # never reload a server this launcher did not start
            self.prepare()
            self.reload()
