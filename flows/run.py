"""Run one flow the way production does: recovery on, workers and epoch from settings.

``python -m flows run NAME [NAME ...]`` (what ``shopstream flow NAME`` and each Procfile line run)
creates the flow's recovery partitions the first time (``SHOP_RECOVERY_PARTITIONS``,
under ``recovery_dir``), then runs ``flows.NAME.flow:build_flow()`` as ``python -m
bytewax.run ... -w N -r DIR -b 0`` would, except that the epoch (and snapshot) interval
comes from ``SHOP_FLOW_EPOCH_MS`` (``bytewax.run`` only takes whole seconds). Keyed steps
do not wait for their epoch to close, so the epoch sets how often state is snapshotted and
output confirmed, not the latency of a hop.
"""

from __future__ import annotations

import importlib
from datetime import timedelta
from pathlib import Path

from bytewax._bytewax import cli_main
from bytewax.recovery import RecoveryConfig, init_db_dir

from flows import metrics
from flows.group import build_group, group_id
from topology import tracing
from topology.access import principal_of
from topology.logs import setup_logging
from topology.processes import PROCESSES
from topology.runtime import tune_collector
from topology.settings import Settings

FLOWS = tuple(p.name for p in PROCESSES if p.kind == "flow")


def recovery_root(settings: Settings) -> Path:
    """The folder of every flow's recovery store under these settings' topic prefix."""
    return settings.recovery_dir / (settings.topic_prefix.rstrip(".") or "default")


def recovery_dir(settings: Settings, name: str) -> Path:
    return recovery_root(settings) / name


def prepare_recovery(settings: Settings, name: str) -> Path:
    """The flow's recovery store, its partitions created the first time."""
    directory = recovery_dir(settings, name)
    if not directory.exists():
        directory.mkdir(parents=True)
        init_db_dir(directory, settings.recovery_partitions)  # type: ignore[no-untyped-call]
    return directory


def main(*names: str) -> None:
    """Run the flow in this process until it is stopped; several names run as one group (``flows/group.py``)."""
    settings = Settings.from_env()
    # Each flow of a group logs under its own name (its steps' loggers are ``flows.NAME.*``), as its spans do.
    setup_logging(settings, "-".join(names), principal_of("flow", names[0]), {f"flows.{n}": n for n in names})
    tracing.configure(settings, *names)  # before the flows are built: their steps are wrapped when it is on
    if len(names) == 1:
        directory = prepare_recovery(settings, names[0])
        # Only the flow being run is imported: each flow's adapters stay out of the other flows' processes.
        flow = importlib.import_module(f"flows.{names[0]}.flow").build_flow(settings=settings)
    else:
        directory = prepare_recovery(settings, group_id(names))
        flow = build_group(names, settings)
    tune_collector()  # after the dataflow is built, as its docstring asks (the sinks do the same)
    metrics.serve(settings, directory, flow.flow_id)  # Bytewax's and ours on SHOP_METRICS_PORT (flows/metrics.py)
    cli_main(  # type: ignore[no-untyped-call]
        flow,
        workers_per_process=settings.flow_workers,
        epoch_interval=timedelta(milliseconds=settings.flow_epoch_ms),
        recovery_config=RecoveryConfig(str(directory), timedelta(0)),  # type: ignore[no-untyped-call]
    )
