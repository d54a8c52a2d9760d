"""Wiring of the inventory flow. Step ids are a state contract: never rename one without a migration note.

Run: ``python -m flows run inventory`` (``shopstream flow inventory``).
"""

from __future__ import annotations

from typing import Any

from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from flows import templates
from flows.inventory import logic
from topology.messages import AdjustStock, CommitStock, ReleaseStock, ReserveStock
from topology.settings import Settings

SERVICE = "inventory"
ACCEPTS = (ReserveStock, ReleaseStock, CommitStock, AdjustStock)


def build_flow(
    source: Source[Any] | None = None, sink: Sink[Any] | None = None, settings: Settings | None = None
) -> Dataflow:
    return templates.entity_flow(
        templates.start(SERVICE, source, settings),
        ACCEPTS,
        "stock",
        "sku",
        lambda stock, item: logic.handle(stock, item.envelope.payload, item.envelope.id),
        sink,
    )
