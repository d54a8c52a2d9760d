"""Wiring of the inventory flow. Step ids are a state contract: never rename one without a migration note.

Run: ``python -m bytewax.run "flows.inventory.flow:build_flow()"`` (``shopstream flow inventory``).
"""

from __future__ import annotations

from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from flows import streams
from flows.inventory import logic
from flows.streams import Cause, Incoming, Out
from topology.messages import AdjustStock, CommitStock, ReleaseStock, ReserveStock
from topology.settings import Settings

SERVICE = "inventory"
ACCEPTS = (ReserveStock, ReleaseStock, CommitStock, AdjustStock)


def build_flow(
    source: Source[Any] | None = None, sink: Sink[Any] | None = None, settings: Settings | None = None
) -> Dataflow:
    begun = streams.start(SERVICE, source, settings)
    settings, prefix, process = begun.settings, begun.prefix, begun.process
    flow, raw = begun.flow, begun.raw
    valid, dead = streams.split(raw, SERVICE, ACCEPTS, process.consumes, prefix)
    keyed = op.key_on("key", valid, lambda item: item.envelope.payload.sku)  # type: ignore[attr-defined]

    def step(state: tuple[logic.Stock, int] | None, item: Incoming) -> tuple[tuple[logic.Stock, int], list[Out]]:
        stock, version = state if state is not None else (None, 0)
        stock, sends = logic.handle(stock, item.envelope.payload, item.envelope.id)
        outs = streams.emit(sends, Cause.of(item.envelope), SERVICE, prefix, version)
        return (stock, streams.advanced(version, sends)), outs

    stocks = op.stateful_map("stock", keyed, step)
    emitted = op.flat_map("flatten", stocks, lambda key_outs: key_outs[1])
    op.output("out", op.merge("all", emitted, dead), sink or streams.sink(settings))
    return flow
