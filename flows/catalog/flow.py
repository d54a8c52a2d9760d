"""Wiring of the catalog flow. Step ids are a state contract: never rename one without a migration note.

Run: ``python -m flows run catalog`` (``shopstream flow catalog``).
"""

from __future__ import annotations

from typing import Any

from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from flows import templates
from flows.catalog import logic
from topology.messages import UpsertProduct
from topology.settings import Settings

SERVICE = "catalog"
ACCEPTS = (UpsertProduct,)


def build_flow(
    source: Source[Any] | None = None, sink: Sink[Any] | None = None, settings: Settings | None = None
) -> Dataflow:
    return templates.entity_flow(
        templates.start(SERVICE, source, settings),
        ACCEPTS,
        "product",
        "sku",
        lambda product, item: logic.handle(product, item.envelope.payload),
        sink,
    )
