"""Request bodies, declared once as strict msgspec Structs: unknown fields and wrong types are refused.

The OpenAPI document is generated from these same Structs (``openapi.py``), so what the
edge enforces and what it documents cannot drift apart.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from topology.messages.base import Quantity, Reason, Sku

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


class Accepted(msgspec.Struct, frozen=True):
    """A command on its way: where to watch it."""

    command_id: str
    status_url: str
    order_id: str | None = None


REQUESTS: tuple[type[msgspec.Struct], ...] = (PlaceOrderRequest, CancelOrderRequest)
