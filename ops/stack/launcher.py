"""Bring the whole embedded stack up, down, or report on it."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from ops import keys
from ops.exceptions import StackError
from ops.stack.base import Server
from ops.stack.kafka import Kafka
from ops.stack.monitoring import Alertmanager, Prometheus
from ops.stack.postgres import PostgresPrimary, PostgresReplica
from ops.stack.search import Search
from ops.stack.stores import Gateway, Mongo, Redis, Smtp
from ops.stack.traces import Traces
from topology.settings import Settings

SERVER_TYPES: tuple[type[Server], ...] = (
    Kafka,
    PostgresPrimary,
    PostgresReplica,
    Redis,
    Search,
    Mongo,
    Smtp,
    Gateway,
    Alertmanager,
    Prometheus,
    Traces,
)


@dataclass(frozen=True)
class ServerStatus:
    name: str
    state: str  # "up", "started", "down", "unhealthy", "failed", "installed"
    address: str
    pid: int | None
    log: str
    seconds: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.state in ("up", "started")


class Stack:
    """The servers of the local stack, under one stack folder."""

    def __init__(self, settings: Settings, only: tuple[str, ...] = ()) -> None:
        self.settings = settings
        servers = [kind(settings) for kind in SERVER_TYPES]
        names = {server.name for server in servers}
        unknown = set(only) - names
        if unknown:
            raise StackError(", ".join(sorted(unknown)), "no such server", f"pick from: {', '.join(sorted(names))}")
        self.servers = {s.name: s for s in servers if not only or s.name in only or self._needed(s, only, servers)}

    @staticmethod
    def _needed(server: Server, only: tuple[str, ...], servers: list[Server]) -> bool:
        by_name = {s.name: s for s in servers}
        return any(server.name in by_name[name].depends_on for name in only)

    def get(self, name: str) -> Server:
        try:
            return self.servers[name]
        except KeyError:
            raise StackError(name, "no such server", f"pick from: {', '.join(self.servers)}") from None

    def _bring_up(self, server: Server, deps: list[Future[ServerStatus]]) -> ServerStatus:
        began = time.monotonic()
        for dep in deps:
            if not dep.result().ok:
                return self._status(server, "failed", began, f"needs {dep.result().name}, which is not up")
        try:
            if server.healthy():
                server.refresh()
                return self._status(server, "up", began)
            if server.pid() is None:
                server.start()
            server.wait_healthy(self.settings.health_timeout_s)
            server.after_healthy()
        except StackError as err:
            return self._status(server, "failed", began, str(err))
        return self._status(server, "started", began)

    def _status(self, server: Server, state: str, began: float, error: str | None = None) -> ServerStatus:
        return ServerStatus(
            server.name, state, server.address, server.pid(), str(server.log_file), time.monotonic() - began, error
        )

    def up(self) -> list[ServerStatus]:
        """Start what is not running and wait for every server's health check; idempotent.

        The local stack's ingress needs a signing key: the first one is made here (``keys.init``).
        """
        keys.init(self.settings, datetime.now(UTC))
        futures: dict[str, Future[ServerStatus]] = {}
        with ThreadPoolExecutor(max_workers=len(self.servers)) as pool:
            for server in self.servers.values():  # declaration order puts dependencies first
                deps = [futures[name] for name in server.depends_on if name in futures]
                futures[server.name] = pool.submit(self._bring_up, server, deps)
            return [futures[name].result() for name in self.servers]

    def install(self) -> list[ServerStatus]:
        """Fetch or build what each server needs (jars, binaries) without starting it; idempotent."""
        results = []
        for server in self.servers.values():
            began = time.monotonic()
            try:
                server.paths.ensure()
                server.install()
            except StackError as err:
                results.append(self._status(server, "failed", began, str(err)))
                continue
            results.append(self._status(server, "installed", began))
        return results

    def down(self) -> list[ServerStatus]:
        """Stop exactly the processes this launcher started, dependants first."""
        results = []
        for server in reversed(list(self.servers.values())):
            began = time.monotonic()
            stopped = server.stop()
            results.append(self._status(server, "stopped" if stopped else "down", began))
        return list(reversed(results))

    def status(self) -> list[ServerStatus]:
        results = []
        for server in self.servers.values():
            began = time.monotonic()
            if server.healthy():
                state = "up"
            elif server.pid() is not None:
                state = "unhealthy"
            else:
                state = "down"
            results.append(self._status(server, state, began))
        return results
