"""Child processes the tests start in their own process groups (flows, sinks)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterable


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
