"""Inventory: per-SKU stock and reservations, keyed by SKU."""

from __future__ import annotations

from typing import Annotated

import msgspec

from topology.messages.base import Command, Event, Id, Quantity, Reason, Sku

Delta = Annotated[int, msgspec.Meta(ge=-1_000_000, le=1_000_000)]
Count = Annotated[int, msgspec.Meta(ge=0)]


class ReserveStock(Command, frozen=True, kw_only=True):
    sku: Sku
    order_id: Id
    quantity: Quantity


class ReleaseStock(Command, frozen=True, kw_only=True):
    sku: Sku
    order_id: Id


class CommitStock(Command, frozen=True, kw_only=True):
    sku: Sku
    order_id: Id


class AdjustStock(Command, frozen=True, kw_only=True):
    """Restock (positive delta) or write off (negative delta); partners and admins only."""

    sku: Sku
    delta: Delta
    reason: Reason = ""


class StockReserved(Event, frozen=True, kw_only=True):
    sku: Sku
    order_id: Id
    quantity: Quantity


class StockRejected(Event, frozen=True, kw_only=True):
    sku: Sku
    order_id: Id
    requested: Quantity
    available: Count


class StockReleased(Event, frozen=True, kw_only=True):
    sku: Sku
    order_id: Id
    quantity: Count


class StockCommitted(Event, frozen=True, kw_only=True):
    sku: Sku
    order_id: Id
    quantity: Count


class StockAdjusted(Event, frozen=True, kw_only=True):
    sku: Sku
    delta: int
    reason: str


class StockLevelChanged(Event, frozen=True, kw_only=True):
    """The state of one SKU after a change; compacted, read by the cache sink."""

    sku: Sku
    total: Count
    reserved: Count
    available: Count
