"""Run one Bytewax flow the way production does: recovery on, workers and epoch from settings.

``shopstream flow NAME`` initialises the flow's recovery partitions under the stack
folder the first time, then replaces itself with ``python -m ops.flowrun NAME``, which
is ``python -m bytewax.run "flows.NAME.flow:build_flow()" -w N -r DIR -b 0`` except that
the epoch (and snapshot) interval comes from ``SHOP_FLOW_EPOCH_MS`` (``bytewax.run`` only
takes whole seconds). Keyed steps do not wait for their epoch to close, so the epoch sets how
often state is snapshotted and output confirmed, not the latency of a hop.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from ops.exceptions import OpsError
from topology.processes import PROCESSES
from topology.runtime import tune_collector
from topology.settings import Settings

FLOWS = tuple(p.name for p in PROCESSES if p.kind == "flow")
BUILT = ("orders", "inventory", "payments", "users", "catalog", "notifications")


def recovery_root(settings: Settings) -> Path:
    """The folder of every flow's recovery store under these settings' topic prefix."""
    return settings.recovery_dir / (settings.topic_prefix.rstrip(".") or "default")


def recovery_dir(settings: Settings, name: str) -> Path:
    return recovery_root(settings) / name


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
    return [sys.executable, "-m", "ops.flowrun", name]


def exec_flow(settings: Settings, name: str) -> None:
    command = argv(settings, name)
    os.execv(command[0], command)  # noqa: S606 - argv built from settings


def main(name: str) -> None:
    """Run the flow in this process (what ``python -m ops.flowrun NAME`` does)."""
    from bytewax._bytewax import cli_main
    from bytewax.recovery import RecoveryConfig

    settings = Settings.from_env()
    flow = importlib.import_module(f"flows.{name}.flow").build_flow(settings=settings)
    tune_collector()  # after the dataflow is built, as its docstring asks (the sinks do the same)
    cli_main(  # type: ignore[no-untyped-call]
        flow,
        workers_per_process=settings.flow_workers,
        epoch_interval=timedelta(milliseconds=settings.flow_epoch_ms),
        recovery_config=RecoveryConfig(str(recovery_dir(settings, name)), timedelta(0)),  # type: ignore[no-untyped-call]
    )


if __name__ == "__main__":
    main(sys.argv[1])
