"""Wiring of the catalog flow. Step ids are a state contract: never rename one without a migration note.

Run: ``python -m bytewax.run "flows.catalog.flow:build_flow()"`` (``shopstream flow catalog``).
"""

from __future__ import annotations

from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from flows import streams
from flows.catalog import logic
from flows.streams import Cause, Incoming, Out
from topology.messages import ProductUpserted, UpsertProduct
from topology.settings import Settings

SERVICE = "catalog"
ACCEPTS = (UpsertProduct,)


def build_flow(
    source: Source[Any] | None = None, sink: Sink[Any] | None = None, settings: Settings | None = None
) -> Dataflow:
    begun = streams.start(SERVICE, source, settings)
    prefix, process = begun.prefix, begun.process
    valid, dead = streams.split(begun.raw, SERVICE, ACCEPTS, process.consumes, prefix)
    keyed = op.key_on("key", valid, lambda item: item.envelope.payload.sku)  # type: ignore[attr-defined]

    def step(
        state: tuple[ProductUpserted | None, int] | None, item: Incoming
    ) -> tuple[tuple[ProductUpserted | None, int], list[Out]]:
        product, version = state if state is not None else (None, 0)
        product, sends = logic.handle(product, item.envelope.payload)
        outs = streams.emit(sends, Cause.of(item.envelope), SERVICE, prefix, version)
        return (product, streams.advanced(version, sends)), outs

    products = op.stateful_map("product", keyed, step)
    emitted = op.flat_map("flatten", products, lambda key_outs: key_outs[1])
    op.output("out", op.merge("all", emitted, dead), sink or streams.sink(begun.settings))
    return begun.flow
