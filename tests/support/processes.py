"""Child processes the tests (and the benchmarks) start, each in a process group of its own.

``spawn`` starts one with its output in a log, ``start_gunicorn`` serves a WSGI app the way
production does and returns once ``/healthz`` answers, ``stop_all`` ends them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import httpx

from topology.settings import PROJECT_ROOT

#: The folder of this interpreter's entry points (``shopstream``, ``gunicorn``).
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(argv: list[str], env: Mapping[str, str], log: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session with ``env`` as its whole environment, stdout and stderr appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            argv, cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process's group and reap it."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def stop_all(processes: Iterable[subprocess.Popen[bytes]], grace_s: float = 10) -> None:
    """SIGTERM every group still running, then SIGKILL what has not left within ``grace_s``."""
    running = list(processes)
    for process in running:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in running:
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def start_gunicorn(
    app: str,
    env: Mapping[str, str],
    port: int,
    log: Path,
    timeout_s: float = 30,
    ready_status: int | None = 200,
) -> subprocess.Popen[bytes]:
    """gunicorn with the project's config serving ``app`` on ``port``, once ``GET /healthz`` answers.

    Args:
        app: the WSGI target, as gunicorn takes it (``ingress.wsgi:app_from_env()``).
        env: variables over this process's environment (settings, ``SHOP_INGRESS_WORKERS``).
        port: the port to serve on (``SHOP_INGRESS_PORT``).
        log: where gunicorn's output goes; its end is in the error when it never answers.
        timeout_s: how long to wait for the answer.
        ready_status: the status that means up; ``None`` takes any answer (an app without ``/healthz``).

    Raises:
        RuntimeError: no answer in ``timeout_s`` (the process is stopped first).
    """
    process = spawn(
        [str(BIN / "gunicorn"), "-c", "ingress/gunicorn.conf.py", app],
        # The operator port (metrics) free too, unless the test names one: by default it is the declared 18001.
        {**os.environ, "SHOP_INGRESS_METRICS_PORT": str(free_port()), **env, "SHOP_INGRESS_PORT": str(port)},
        log,
        cwd=PROJECT_ROOT,
    )
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            status = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code
            if ready_status is None or status == ready_status:
                return process
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            stop_all([process])
            tail = log.read_text()[-2000:]
            raise RuntimeError(f"{app} did not answer /healthz in {timeout_s:.0f} s; {log} ends:\n{tail}")
        time.sleep(0.2)
