"""One product as a state machine: each upsert replaces it; pure, no I/O, no clock.

An upsert that changes nothing (a retried command, or the same product sent again)
emits nothing; any change emits the whole product as ``ProductUpserted``, which the
sinks index and cache.
"""

from __future__ import annotations

from flows.outcome import Send
from topology.messages import Message, ProductUpserted, UpsertProduct
from topology.topics import CATALOG_EVENTS


def handle(product: ProductUpserted | None, message: Message) -> tuple[ProductUpserted | None, list[Send]]:
    if not isinstance(message, UpsertProduct):
        return product, []
    owner = message.owner_partner_id or (product.owner_partner_id if product is not None else None)
    upserted = ProductUpserted(
        sku=message.sku,
        title=message.title,
        description=message.description,
        brand=message.brand,
        category=message.category,
        tags=list(message.tags),
        price=message.price,
        owner_partner_id=owner,
    )
    if upserted == product:
        return product, []
    return upserted, [Send(CATALOG_EVENTS, upserted.sku, upserted)]
