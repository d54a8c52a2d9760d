"""The whole system for the benches that run it for a while and hurt it: ``bench.chaos``, ``bench.soak``.

``private_stack`` gives settings for a stack of the bench's own (free ports, its own folder,
the shared tools), for faults that stop servers other people's tests use. ``System`` runs
``shopstream run`` on a copy of the Procfile whose metrics ports are free ones, under the
settings given, and stops it after. ``supervised`` reads what the supervisor says of each
process; ``wait_back`` waits until every process runs and every server of the stack answers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import httpx

from bench.e2e import BIN, Customer, _until_allowed, descendants, process_tree, wait_ready
from ops.stack.launcher import Stack
from ops.supervisor import Status, read_status
from tests.support.processes import free_port
from topology.processes import PROGRAMS, metrics_targets
from topology.settings import PROJECT_ROOT, Settings


def private_stack(base: Settings, root: Path) -> Settings:
    """Settings for a second stack under ``root`` on free ports, sharing ``base``'s downloaded tools."""
    return base.model_copy(
        update={
            "stack_dir": root,
            "tools_dir": base.tools_dir or base.stack_dir / "tools",
            "kafka_port": free_port(),
            "kafka_controller_port": free_port(),
            "pg_port": free_port(),
            "pg_replica_port": free_port(),
            "redis_port": free_port(),
            "search_port": free_port(),
            "mongo_port": free_port(),
            "smtp_port": free_port(),
            "gateway_port": free_port(),
            "prometheus_port": free_port(),
            "alertmanager_port": free_port(),
            "health_timeout_s": 180,
        }
    )


def with_free_ports(settings: Settings) -> Settings:
    """``settings`` with the system's own listening ports (API, operator, supervisor) on free ones."""
    return with_free_metrics_ports(
        settings.model_copy(
            update={
                "ingress_port": free_port(),
                "ingress_metrics_port": free_port(),
                "supervisor_metrics_port": free_port(),
            }
        )
    )


def with_free_metrics_ports(settings: Settings) -> Settings:
    """``settings`` with every flow's and sink's metrics port on a free one (two systems never collide)."""
    moved = {p.name: free_port() for p in PROGRAMS if p.kind in ("flow", "sink")}
    return settings.model_copy(update={"metrics_ports": moved})


class System:
    """``shopstream run`` (the stack up, the topology, the migrations, every Procfile process) under ``settings``.

    ``attach``: the system runs already under ``settings`` (started by the caller): it is only waited for.
    """

    def __init__(self, settings: Settings, folder: Path, attach: bool = False) -> None:
        # A system started here serves its flows' and sinks' metrics on free ports unless told which.
        self.settings = settings if attach or settings.metrics_ports else with_free_metrics_ports(settings)
        self.folder = folder
        self.attach = attach
        self.api = f"http://{settings.host}:{settings.ingress_port}"
        self.log = folder / "system.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        # Loopback is trusted as the edge, as in bench.e2e: each customer comes from its own address.
        return {**os.environ, **self.settings.to_env(), "SHOP_TRUSTED_PROXIES": "127.0.0.1"}

    def __enter__(self) -> System:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.attach:
            wait_ready(self.api, timeout_s=300)
            return self
        taken = [port for port in self.ports if listening(self.settings.host, port)]
        if taken:
            # An earlier system still running there would answer in this one's place (old keys: 401s).
            raise SystemExit(f"ports {taken} are taken: stop what listens there before starting a system")
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(BIN / "shopstream"), "run"],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_ready(self.api, timeout_s=300)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self.process is None:
            return
        ours = set(descendants(process_tree(), self.process.pid))  # before the stop: a child left behind is still named
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        left = [pid for pid in ours | set(descendants(process_tree(), self.process.pid)) if _alive(pid)]
        for pid in left:  # a process in a session of its own does not get the group's signal
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while (busy := [p for p in self.ports if listening(self.settings.host, p)]) and time.monotonic() < deadline:
            time.sleep(0.2)
        if busy:
            raise RuntimeError(f"the system was stopped but ports {busy} still listen")

    @property
    def ports(self) -> tuple[int, ...]:
        """The system's own listening ports that outlive it when its stop goes wrong."""
        ports = (self.settings.ingress_port, *(port for _, port in metrics_targets(self.settings)))
        return tuple(port for port in ports if port)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def listening(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def stop_on_sigterm() -> None:
    """SIGTERM and SIGINT (even where a background job ignores it) end the bench through its ``finally``."""

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def log_in_again(client: httpx.Client, people: list[Customer]) -> None:
    """Fresh access tokens for ``setup``'s customers: a run longer than a token's lifetime logs in between loads."""
    for person in people:
        person.token = ""
        body = {"email": person.email, "password": "bench-password-1"}
        answer = _until_allowed(client, "POST", "/v1/auth/login", "log-in", json=body, headers=person.headers)
        person.token = answer.json()["access_token"]


def supervised(settings: Settings) -> dict[str, Status]:
    """What the supervisor of ``settings``' system says of each process, by Procfile name."""
    return {status.name: status for status in read_status(settings)}


def wait_back(settings: Settings, timeout_s: float) -> tuple[float | None, list[str]]:
    """Seconds until every supervised process runs and every server answers (None: not within ``timeout_s``).

    Also what was still down at the end (empty when everything came back).
    """
    began = time.monotonic()
    while True:
        down = [f"{s.name} ({s.state})" for s in supervised(settings).values() if s.state != "running"]
        down += [f"{s.name} (server {s.state})" for s in Stack(settings).status() if not s.ok]
        if not down:
            return time.monotonic() - began, []
        if time.monotonic() - began > timeout_s:
            return None, down
        time.sleep(0.5)
