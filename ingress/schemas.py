"""Request bodies, declared once as strict msgspec Structs: unknown fields and wrong types are refused.

The OpenAPI document is generated from these same Structs (``openapi.py``), so what the
edge enforces and what it documents cannot drift apart.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from topology.messages.base import Currency, Quantity, Reason, Sku, Text
from topology.messages.catalog import Tags, Title
from topology.messages.inventory import Delta
from topology.messages.users import Name, Phone

Token = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class LineRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    sku: Sku
    quantity: Quantity


class PlaceOrderRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Place an order; prices come from the catalog, never from the client."""

    lines: Annotated[list[LineRequest], msgspec.Meta(min_length=1, max_length=100)]
    payment_token: Token


class CancelOrderRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    reason: Reason = "customer request"


class RefundRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    amount: Annotated[int, msgspec.Meta(ge=1, le=10**12)]
    currency: Currency
    reason: Reason


class ProductRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Add or replace a product (the SKU is in the path)."""

    title: Title
    price_amount: Annotated[int, msgspec.Meta(ge=0, le=10**12)]
    currency: Currency
    description: Text = ""
    brand: Annotated[str, msgspec.Meta(max_length=80)] = ""
    category: Annotated[str, msgspec.Meta(max_length=80)] = ""
    tags: Tags = msgspec.field(default_factory=list)


class StockAdjustmentRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    delta: Delta
    reason: Reason = ""


class ProfileRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Name | None = None
    phone: Phone | None = None


class Accepted(msgspec.Struct, frozen=True):
    """A command on its way: where to watch it."""

    command_id: str
    status_url: str
    order_id: str | None = None


REQUESTS: tuple[type[msgspec.Struct], ...] = (
    PlaceOrderRequest,
    CancelOrderRequest,
    RefundRequest,
    ProductRequest,
    StockAdjustmentRequest,
    ProfileRequest,
)
