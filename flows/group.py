"""Several flows in one dataflow, run by one process.

Each Bytewax 0.21.1 worker wakes about a thousand times a second whatever its inputs' awake
times (its loop parks for at most 1 ms), so every flow process costs CPU even with no input.
A group runs several flows in one worker: each flow's steps are built as they are alone, inside
a step named after the flow (``orders-inventory-payments.orders.saga``), with their own inputs,
outputs and state; only the worker loop, the process and the recovery store are shared.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from bytewax.dataflow import Dataflow, operator

from flows.templates import HOST, FlowFactory
from topology.settings import Settings


def group_id(names: Sequence[str]) -> str:
    """The dataflow id (and recovery store name) of a group: its flows' names in order."""
    return "-".join(names)


@operator
def hosted(step_id: str, flow: Dataflow, build: FlowFactory, settings: Settings) -> None:
    """The flow ``build`` makes, built inside this step of ``flow``."""
    token = HOST.set((flow, step_id.rsplit(".", 1)[-1]))
    try:
        build(settings=settings)
    finally:
        HOST.reset(token)


def build_group(names: Sequence[str], settings: Settings) -> Dataflow:
    """One dataflow holding every named flow (each flow's module imported only here)."""
    if len(set(names)) != len(names):
        raise ValueError(f"a flow is named twice in {list(names)}")
    flow = Dataflow(group_id(names))
    for name in names:
        hosted(name, flow, importlib.import_module(f"flows.{name}.flow").build_flow, settings)
    return flow
