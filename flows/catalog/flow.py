"""Wiring of the catalog flow. Step ids are a state contract: never rename one without a migration note.

Run: ``python -m flows run catalog`` (``shopstream flow catalog``).
"""

from __future__ import annotations

from flows import templates
from flows.catalog import logic
from topology.messages import UpsertProduct

SERVICE = "catalog"
ACCEPTS = (UpsertProduct,)

build_flow = templates.entity_flow_factory(
    SERVICE, ACCEPTS, "product", "sku", lambda product, item: logic.handle(product, item.envelope.payload)
)
