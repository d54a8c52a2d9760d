"""What every server of the embedded stack has: a data folder, a log file, a pid file.

A server is started once, detached into its own session, its stdout and stderr sent
to its own log file. ``stop`` acts only on the pid the launcher wrote, and only when
that pid still runs the command this server started (its data folder is in the command
line), so a recycled pid is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ops.exceptions import StackError
from topology.settings import Settings


@dataclass(frozen=True)
class StackPaths:
    """The one stack folder and what lives under it."""

    root: Path
    tools_override: Path | None = None

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def tools(self) -> Path:
        return self.tools_override or self.root / "tools"

    def ensure(self) -> None:
        for folder in (self.data, self.logs, self.run, self.tools):
            folder.mkdir(parents=True, exist_ok=True)


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def process_cmdline(pid: int) -> str | None:
    """The command line of a live process, or None when it is gone (or a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace")


def maven(server: str, pom: Path, arguments: list[str], timeout_s: float, failed: str, fix: str) -> None:
    """``mvn -q -B -f POM ARGUMENTS`` for ``server``'s jars; a StackError naming ``failed`` and ``fix`` if it fails."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(
            server,
            "Maven (mvn) is missing, so its jars cannot be fetched",
            "install Maven and a JDK 17 (apt-get install -y maven openjdk-17-jdk-headless)",
        )
    proc = subprocess.run(
        [mvn, "-q", "-B", "-f", str(pom), *arguments],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if proc.returncode != 0:
        raise StackError(server, f"{failed}:\n{proc.stdout[-2500:]}{proc.stderr[-1500:]}", fix)


def tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Server(ABC):
    """One real server of the local stack."""

    name: ClassVar[str]
    depends_on: ClassVar[tuple[str, ...]] = ()
    #: The signal that asks the server for a clean, quick shutdown.
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM
    #: Whether the stop signal goes to the server's whole process group (wrappers and children).
    signal_group: ClassVar[bool] = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.paths = StackPaths(settings.stack_dir, settings.tools_dir)

    # -- layout ---------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.paths.data / self.name

    @property
    def log_file(self) -> Path:
        return self.paths.logs / f"{self.name}.log"

    @property
    def pid_file(self) -> Path:
        return self.paths.run / f"{self.name}.pid"

    @property
    @abstractmethod
    def ports(self) -> tuple[int, ...]:
        """The loopback ports this server listens on."""

    @property
    @abstractmethod
    def address(self) -> str:
        """Where clients connect, for status output."""

    # -- lifecycle steps a subclass fills in -----------------------------
    def install(self) -> None:  # noqa: B027 - optional step
        """Bring what the server needs onto the machine, when it is missing."""

    def prepare(self) -> None:  # noqa: B027 - optional step
        """Initialise the data folder when new; refuse (never delete) a corrupt one."""

    @abstractmethod
    def command(self) -> list[str]:
        """The argv of the server process; it must name the data folder or run inside it."""

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def process_user(self) -> str | None:
        """The OS user the server runs as (None: the launcher's own user)."""
        return None

    def after_healthy(self) -> None:  # noqa: B027 - optional step
        """One-time set-up that needs the server answering (e.g. create a database)."""

    def refresh(self) -> None:  # noqa: B027 - optional step
        """Bring a server found running up to date with its generated configuration (e.g. reload it)."""

    @abstractmethod
    def healthy(self) -> bool:
        """One quick health probe with a short timeout."""

    # -- process management ----------------------------------------------
    def pid(self) -> int | None:
        """The pid this launcher started, if that process still runs this server."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        cmdline = process_cmdline(pid)
        if cmdline is None:
            return None
        if str(self.data_dir) in cmdline or self._runs_in_data_dir(pid):
            return pid
        return None

    def _runs_in_data_dir(self, pid: int) -> bool:
        """Servers that rewrite their process title (redis) are known by their working folder."""
        try:
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:
            return False
        return cwd == self.data_dir or self.data_dir in cwd.parents

    def start(self) -> None:
        self.paths.ensure()
        busy = [port for port in self.ports if not port_is_free(self.settings.host, port)]
        if busy:
            raise StackError(
                self.name,
                f"port {', '.join(map(str, busy))} on {self.settings.host} is taken by another process",
                f"stop that process, or give {self.name} other ports through its SHOP_*_PORT settings",
            )
        self.install()
        self.prepare()
        with self.log_file.open("ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {self.name}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=self.environment(),
                cwd=self.data_dir if self.data_dir.is_dir() else self.paths.root,
                user=self.process_user(),
            )
        self.pid_file.write_text(f"{proc.pid}\n")

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy():
                return
            if self.pid() is None:
                raise StackError(
                    self.name,
                    f"the server exited during start-up:\n{tail(self.log_file)}",
                    "read the log; if the data folder is damaged, move it away (nothing was deleted)",
                    str(self.log_file),
                )
            time.sleep(0.3)
        raise StackError(
            self.name,
            f"not healthy after {timeout:.0f} s:\n{tail(self.log_file)}",
            "read the log; raise SHOP_HEALTH_TIMEOUT_S if the machine is slow",
            str(self.log_file),
        )

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the process this launcher started; True when one was stopped."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            if self.signal_group:
                os.killpg(pid, self.stop_signal)
            else:
                os.kill(pid, self.stop_signal)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process_cmdline(pid) is not None:
            time.sleep(0.1)
        if process_cmdline(pid) is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True

    def refuse_unknown_folder(self, marker: str) -> None:
        """Raise when the data folder holds files but not the marker a healthy one has."""
        if self.data_dir.is_dir() and any(self.data_dir.iterdir()) and not (self.data_dir / marker).exists():
            raise StackError(
                self.name,
                f"data folder {self.data_dir} is not empty but has no {marker}: it looks corrupt or foreign",
                f"move it away (mv {self.data_dir} {self.data_dir}.bak) and run `shopstream stack up` again; "
                "nothing was deleted",
            )
