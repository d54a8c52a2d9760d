"""Wiring of the inventory flow. Step ids are a state contract: never rename one without a migration note.

Run: ``python -m flows run inventory`` (``shopstream flow inventory``).
"""

from __future__ import annotations

from flows import templates
from flows.inventory import logic
from topology.messages import AdjustStock, CommitStock, ProductUpserted, ReleaseStock, ReserveStock

SERVICE = "inventory"
ACCEPTS = (ReserveStock, ReleaseStock, CommitStock, AdjustStock, ProductUpserted)  # the product: owner and price

build_flow = templates.entity_flow_factory(
    SERVICE, ACCEPTS, "stock", "sku", lambda stock, item: logic.handle(stock, item.envelope.payload, item.envelope.id)
)
