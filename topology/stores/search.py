"""Search indexes: each a versioned index behind an alias, with its mappings.

``{prefix}products`` is an alias pointing at ``{prefix}products-vN``; a reindex builds
``-vN+1`` and swaps the alias. Documents are read-model rows of the index's table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from topology.stores.tables import ORDER_DOCS, PRODUCTS, Table

KEYWORD = {"type": "keyword"}
DATE = {"type": "date"}
LONG = {"type": "long"}


@dataclass(frozen=True)
class SearchIndex:
    name: str
    table: Table
    properties: dict[str, Any]

    def alias(self, prefix: str) -> str:
        return f"{prefix}{self.name}"

    def versioned(self, prefix: str, n: int) -> str:
        return f"{prefix}{self.name}-v{n}"


PRODUCT_INDEX = SearchIndex(
    "products",
    PRODUCTS,
    {
        "sku": KEYWORD,
        "title": {"type": "text", "fields": {"raw": KEYWORD}},
        "description": {"type": "text"},
        "brand": KEYWORD,
        "category": KEYWORD,
        "tags": KEYWORD,
        "price_amount": LONG,
        "currency": KEYWORD,
        "owner_partner_id": KEYWORD,
        "updated_at": DATE,
        "version": LONG,
    },
)
ORDER_INDEX = SearchIndex(
    "orders",
    ORDER_DOCS,
    {
        "order_id": KEYWORD,
        "customer_id": KEYWORD,
        "status": KEYWORD,
        "total_amount": LONG,
        "currency": KEYWORD,
        "placed_at": DATE,
        "carrier": KEYWORD,
        "tracking_code": KEYWORD,
        "cancel_reason": {"type": "text"},
        "updated_at": DATE,
        "skus": KEYWORD,
        "version": LONG,
    },
)
INDEXES = {i.name: i for i in (PRODUCT_INDEX, ORDER_INDEX)}
