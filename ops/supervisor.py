"""Run every process of a Procfile and keep it running: what ``shopstream run`` does after start-up.

A process that exits while the system
runs is started again after a backoff that doubles from ``SHOP_RESTART_BACKOFF_S`` up to 30 s
and falls back once it has run for a minute; a process that needs more than
``SHOP_RESTART_BUDGET`` restarts within ``SHOP_RESTART_WINDOW_S`` is given up on (left down,
shown as ``failed``) while the others go on. Ctrl-C or SIGTERM stops every process (SIGTERM to
each process group, SIGKILL after ``STOP_GRACE_S``) and ends the supervisor.

Each process's output is printed line by line after its name. What each process
is doing (state, pid, restarts, last exit) is kept in ``.stack/run/processes.json`` for
``shopstream stack status``, and served as Prometheus metrics (``shop_process_restarts_total``,
``shop_process_up``, and every consumer group's lag: ``ops/lag_metrics.py``) on the supervisor's
port (``topology.processes.PROGRAMS``; ``SHOP_SUPERVISOR_METRICS_PORT`` moves it). Each process
of a declared program is given its own metrics port in ``SHOP_METRICS_PORT``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from ops.exceptions import OpsError
from ops.lag_metrics import LagCollector
from topology.logs import CONSOLE, DROPPED
from topology.processes import PROGRAMS, metrics_port
from topology.settings import Settings

log = logging.getLogger(__name__)
STOP_GRACE_S = 10.0
MAX_BACKOFF_S = 30.0
#: A process that ran this long without exiting is well again: its backoff starts over.
HEALTHY_AFTER_S = 60.0
State = Literal["starting", "running", "backoff", "failed", "stopped"]
LINE = re.compile(r"^([A-Za-z0-9_.-]+):\s*(.+)$")


class ProcfileError(OpsError):
    """A Procfile that cannot be run: the message says which line and why."""


@dataclass(frozen=True)
class Entry:
    name: str
    command: str


def read_procfile(path: Path) -> list[Entry]:
    """The processes a Procfile names, in order; a ProcfileError for a line that is not ``name: command``."""
    try:
        text = path.read_text()
    except OSError as err:
        raise ProcfileError(f"cannot read {path}: {err.strerror}") from None
    entries: list[Entry] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = LINE.match(line.strip())
        if match is None:
            raise ProcfileError(f"{path}:{number}: not `name: command`: {line.strip()[:80]!r}")
        if any(e.name == match.group(1) for e in entries):
            raise ProcfileError(f"{path}:{number}: the name {match.group(1)!r} is used twice")
        entries.append(Entry(match.group(1), match.group(2)))
    return entries


@dataclass
class Status:
    """What the supervisor knows of one process (written to the status file as it changes)."""

    name: str
    command: str
    state: State = "starting"
    pid: int | None = None
    restarts: int = 0
    started_at: str | None = None
    last_exit: int | None = None


@dataclass
class Child:
    entry: Entry
    status: Status
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    backoff_s: float = 0.0
    due: float = 0.0  # monotonic time of the next start, while in backoff
    exits: deque[float] = field(default_factory=deque)


def status_file(settings: Settings) -> Path:
    """Where a ``shopstream run`` under these settings keeps its processes' status (one per topic prefix)."""
    prefix = settings.topic_prefix.rstrip(".")
    return settings.stack_dir / "run" / (f"processes.{prefix}.json" if prefix else "processes.json")


def read_status(settings: Settings) -> list[Status]:
    """The processes of the running (or last) ``shopstream run``; empty when there was none."""
    try:
        rows = json.loads(status_file(settings).read_text())
    except (OSError, ValueError):
        return []
    return [Status(**row) for row in rows]


class Supervisor:
    def __init__(self, entries: list[Entry], settings: Settings, cwd: Path, out: IO[str] | None = None) -> None:
        self.settings, self.cwd, self.out = settings, cwd, out or sys.stdout
        self.children = [Child(e, Status(e.name, e.command)) for e in entries]
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._width = max((len(e.name) for e in entries), default=0)
        registry = CollectorRegistry()
        self.restarts = Counter(
            "shop_process_restarts", "Restarts of a supervised process", ["process"], registry=registry
        )
        self.up = Gauge("shop_process_up", "1 while a supervised process runs", ["process"], registry=registry)
        for child in self.children:
            self.restarts.labels(child.entry.name)
            self.up.labels(child.entry.name).set(0)
        registry.register(LagCollector(settings))
        registry.register(DROPPED)  # the supervisor's own log records that were not shipped
        self.registry = registry
        # The metrics port each declared flow and sink is given (the ingress and the supervisor read their own).
        declared = {p.name for p in PROGRAMS if p.kind in ("flow", "sink")}
        self.ports = {e.name: metrics_port(e.name, settings) for e in entries if e.name in declared}

    # Output
    def say(self, name: str, text: str) -> None:
        with self._lock:
            self.out.write(f"{datetime.now().astimezone().strftime('%H:%M:%S')} {name:<{self._width}} | {text}\n")
            self.out.flush()

    def _event(self, name: str, text: str, action: str, level: int = logging.INFO) -> None:
        """A line on the console, and the same as a shipped log record (not printed twice)."""
        self.say(name, text)
        log.log(level, "%s: %s", name, text, extra={CONSOLE: False, "event.action": action, "labels.process": name})

    def _pump(self, name: str, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self.say(name, raw.decode(errors="replace").rstrip("\n"))
        stream.close()

    def _save(self) -> None:
        path = status_file(self.settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps([asdict(c.status) for c in self.children], indent=1))
        temporary.replace(path)

    # Lifecycle
    def _start(self, child: Child) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if child.entry.name in self.ports:
            env["SHOP_METRICS_PORT"] = str(self.ports[child.entry.name])
        child.process = subprocess.Popen(  # noqa: S602 - a Procfile line is a shell command by definition
            child.entry.command,
            shell=True,
            cwd=self.cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: a stop reaches its children too
        )
        output = child.process.stdout
        if output is not None:  # always, with stdout=PIPE
            threading.Thread(target=self._pump, args=(child.entry.name, output), daemon=True).start()
        child.started = time.monotonic()
        child.status.state, child.status.pid = "running", child.process.pid
        child.status.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.up.labels(child.entry.name).set(1)
        self._event(child.entry.name, f"started with pid {child.process.pid}", "process-started")

    def _exited(self, child: Child, code: int) -> None:
        now = time.monotonic()
        child.status.last_exit, child.status.pid, child.process = code, None, None
        self.up.labels(child.entry.name).set(0)
        if now - child.started >= HEALTHY_AFTER_S:
            child.backoff_s = 0.0
        child.exits.append(now)
        while child.exits and now - child.exits[0] > self.settings.restart_window_s:
            child.exits.popleft()
        if len(child.exits) > self.settings.restart_budget:
            child.status.state = "failed"
            self._event(
                child.entry.name,
                f"exited with {code}; {len(child.exits)} exits within {self.settings.restart_window_s:.0f} s "
                f"is past the restart budget ({self.settings.restart_budget}): left down",
                "process-failed",
                logging.ERROR,
            )
            return
        child.backoff_s = min(max(child.backoff_s * 2, self.settings.restart_backoff_s), MAX_BACKOFF_S)
        child.due, child.status.state = now + child.backoff_s, "backoff"
        self._event(
            child.entry.name,
            f"exited with {code}; starting it again in {child.backoff_s:.1f} s",
            "process-exited",
            logging.WARNING,
        )

    def _tick(self) -> None:
        changed = False
        for child in self.children:
            if child.process is not None and (code := child.process.poll()) is not None:
                self._exited(child, code)
                changed = True
            elif child.status.state == "backoff" and time.monotonic() >= child.due:
                child.status.restarts += 1
                self.restarts.labels(child.entry.name).inc()
                self._start(child)
                changed = True
        if changed:
            self._save()

    def stop(self) -> None:
        """Every process stopped: SIGTERM to its group, SIGKILL to what is left after the grace."""
        self.stopping.set()
        running = [(c, c.process) for c in self.children if c.process is not None and c.process.poll() is None]
        for _, process in running:
            _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for child, process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._event(
                    child.entry.name,
                    f"still running {STOP_GRACE_S:.0f} s after SIGTERM: killed",
                    "process-killed",
                    logging.WARNING,
                )
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
        for child in self.children:
            _signal_group(child.status.pid, signal.SIGKILL)  # what a stopped process left in its group
            child.status.state, child.status.pid, child.process = "stopped", None, None
            self.up.labels(child.entry.name).set(0)
        self._save()

    def _serve_metrics(self) -> None:
        port = metrics_port("supervisor", self.settings)
        if not port:
            return
        try:
            start_http_server(port, addr=self.settings.host, registry=self.registry)
        except OSError as err:  # telemetry only: the processes run without it
            self.say("supervisor", f"no metrics: {port} is taken ({err.strerror}); see SHOP_SUPERVISOR_METRICS_PORT")

    def run(self) -> int:
        """Start everything, keep it running until SIGINT or SIGTERM; then stop everything. The exit code."""

        def asked_to_stop(signum: int, _frame: object) -> None:
            self.stopping.set()

        previous = {s: signal.signal(s, asked_to_stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._serve_metrics()
            for child in self.children:
                self._start(child)
            self._save()
            while not self.stopping.wait(0.2):
                self._tick()
            self._event("supervisor", "stopping every process", "supervisor-stopping")
            return 0
        finally:
            self.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def _signal_group(pid: int | None, signum: signal.Signals) -> None:
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)
