"""Inventory: per-SKU stock and reservations, keyed by SKU."""

from __future__ import annotations

from typing import Annotated

import msgspec

from topology.messages.base import Command, Event, Id, Money, Quantity, Reason, Sku

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
    """Restock (positive delta) or write off (negative delta); partners and admins only.

    ``partner_id`` is the partner that asks, set inside the system (the ingress from the
    caller's token, the orders flow from the partner's topic), never taken from a partner's
    message: the inventory flow refuses an adjustment by a partner of a SKU it does not own.
    None: an admin's or the system's own (a cancelled order's units put back).
    """

    sku: Sku
    delta: Delta
    reason: Reason = ""
    partner_id: Id | None = None


class StockReserved(Event, frozen=True, kw_only=True):
    """Units held for an order, at ``unit_price``: the catalog's price of the SKU when it was reserved."""

    sku: Sku
    order_id: Id
    quantity: Quantity
    unit_price: Money | None = None


class StockRejected(Event, frozen=True, kw_only=True):
    """No units held; ``reason`` says why when it is not a shortage (a SKU without a catalog price)."""

    sku: Sku
    order_id: Id
    requested: Quantity
    available: Count
    reason: Reason = ""


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
