"""Wiring of the inventory flow. Step ids are a state contract: never rename one without a migration note.

Run: ``python -m bytewax.run "flows.inventory.flow:build_flow()"`` (``shopstream flow inventory``).
"""

from __future__ import annotations

from typing import Any

from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from flows import streams
from flows.inventory import logic
from topology.messages import AdjustStock, CommitStock, ReleaseStock, ReserveStock
from topology.settings import Settings

SERVICE = "inventory"
ACCEPTS = (ReserveStock, ReleaseStock, CommitStock, AdjustStock)


def build_flow(
    source: Source[Any] | None = None, sink: Sink[Any] | None = None, settings: Settings | None = None
) -> Dataflow:
    return streams.entity_flow(
        streams.start(SERVICE, source, settings),
        ACCEPTS,
        "stock",
        lambda item: item.envelope.payload.sku,  # type: ignore[attr-defined]
        lambda stock, item: logic.handle(stock, item.envelope.payload, item.envelope.id),
        sink,
    )
