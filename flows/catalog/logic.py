"""One product as a state machine: each upsert replaces it; pure, no I/O, no clock.

An upsert that changes nothing (a retried command, or the same product sent again)
emits nothing; any change emits the whole product as ``ProductUpserted``, which the
sinks index and cache and the inventory flow learns each SKU's owner and price from.

Ownership: the first partner to upsert a SKU owns it (``owner_partner_id``, set inside the
system: by the ingress from the caller's token, by the orders flow from the partner's
topic). An upsert by another partner is refused, and changes nothing. An upsert without a
partner (an admin's) keeps the owner.
"""

from __future__ import annotations

from flows.outcome import Refusal, Send
from topology.messages import Message, ProductUpserted, UpsertProduct
from topology.topics import CATALOG_EVENTS


def handle(product: ProductUpserted | None, message: Message) -> tuple[ProductUpserted | None, list[Send] | Refusal]:
    if not isinstance(message, UpsertProduct):
        return product, []
    owner = product.owner_partner_id if product is not None else None
    by = message.owner_partner_id
    if owner is not None and by is not None and by != owner:
        return product, Refusal(f"SKU {message.sku} belongs to partner {owner}: partner {by} may not change it")
    upserted = ProductUpserted(
        sku=message.sku,
        title=message.title,
        description=message.description,
        brand=message.brand,
        category=message.category,
        tags=list(message.tags),
        price=message.price,
        owner_partner_id=owner or by,
    )
    if upserted == product:
        return product, []
    return upserted, [Send(CATALOG_EVENTS, upserted.sku, upserted)]
