"""Run one Bytewax flow the way production does: recovery on, workers from settings.

``shopstream flow NAME`` initialises the flow's recovery partitions under the stack
folder the first time, then replaces itself with
``python -m bytewax.run "flows.NAME.flow:build_flow()" -w N -r DIR -s S -b 0``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ops.exceptions import OpsError
from topology.processes import PROCESSES
from topology.settings import Settings

FLOWS = tuple(p.name for p in PROCESSES if p.kind == "flow")
BUILT = ("orders", "inventory", "payments")


def recovery_dir(settings: Settings, name: str) -> Path:
    prefix = settings.topic_prefix.rstrip(".") or "default"
    return settings.recovery_dir / prefix / name


def argv(settings: Settings, name: str) -> list[str]:
    if name not in FLOWS:
        raise OpsError(f"no flow named {name!r}\n  fix: pick from {', '.join(BUILT)}")
    if name not in BUILT:
        raise OpsError(f"the {name} flow is declared in topology/processes.py but not built yet")
    directory = recovery_dir(settings, name)
    if not directory.exists():
        directory.mkdir(parents=True)
        subprocess.run(
            [sys.executable, "-m", "bytewax.recovery", str(directory), str(settings.recovery_partitions)],
            check=True,
            capture_output=True,
        )
    return [
        sys.executable,
        "-m",
        "bytewax.run",
        f"flows.{name}.flow:build_flow()",
        "-w",
        str(settings.flow_workers),
        "-r",
        str(directory),
        "-s",
        str(settings.flow_snapshot_s),
        "-b",
        "0",
    ]


def exec_flow(settings: Settings, name: str) -> None:
    command = argv(settings, name)
    os.execv(command[0], command)  # noqa: S606 - argv built from settings
