"""Orders: the lifecycle saga's commands and events, keyed by order id."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from topology.messages.base import Command, Event, Id, Money, Quantity, Reason, Sku
from topology.messages.payments import PaymentSource


class OrderLine(msgspec.Struct, frozen=True):
    """A line as the order's events carry it: priced by the catalog, at the price its stock was reserved at."""

    sku: Sku
    quantity: Quantity
    unit_price: Money


class OrderItem(msgspec.Struct, frozen=True):
    """A line as a customer or partner asks for it: what and how many, never a price."""

    sku: Sku
    quantity: Quantity


Lines = Annotated[list[OrderLine], msgspec.Meta(min_length=1, max_length=100)]
Items = Annotated[list[OrderItem], msgspec.Meta(min_length=1, max_length=100)]
PaymentToken = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class PlaceOrder(Command, frozen=True, kw_only=True):
    """Version 1: lines with the unit price the sender claimed. Superseded by ``PlaceOrderV2``.

    Still read (an order on the topics from before), but its prices are never used: the saga
    prices every order from its reservations. A partner's topic refuses it.
    """

    order_id: Id
    customer_id: Id
    lines: Lines
    payment_token: PaymentToken


class PlaceOrderV2(Command, frozen=True, kw_only=True):
    """Place an order: SKUs and quantities only; the unit prices are the catalog's, set when stock is reserved.

    Paid with a one-time card token; ``PlaceOrderV3`` may name a saved payment method instead.
    Still read, and what a partner's topic takes.
    """

    TYPE = "PlaceOrder"
    VERSION = 2

    order_id: Id
    customer_id: Id
    lines: Items
    payment_token: PaymentToken


class PlaceOrderV3(Command, frozen=True, kw_only=True):
    """Place an order as version 2 does, paid with a one-time card token or a saved payment method."""

    TYPE = "PlaceOrder"
    VERSION = 3

    order_id: Id
    customer_id: Id
    lines: Items
    payment: PaymentSource


class CancelOrder(Command, frozen=True, kw_only=True):
    order_id: Id
    reason: Reason = "customer request"


class MarkOrderShipped(Command, frozen=True, kw_only=True):
    order_id: Id
    carrier: Annotated[str, msgspec.Meta(max_length=64)]
    tracking_code: Annotated[str, msgspec.Meta(max_length=128)]


class MarkOrderDelivered(Command, frozen=True, kw_only=True):
    order_id: Id


class RequestRefund(Command, frozen=True, kw_only=True):
    order_id: Id
    amount: Money
    reason: Reason


class ExpireOrderStep(Command, frozen=True, kw_only=True):
    """The saga's own timer: the step waiting until ``deadline`` got no answer in time.

    The orders flow sends it to itself through its inbox when the wall clock passes a
    deadline, and cancels only when it reads it back, so a replay meets it at the same place
    in the order's log as the first run did.
    """

    order_id: Id
    deadline: Annotated[datetime, msgspec.Meta(tz=True)]  # aware, UTC


class OrderPlaced(Event, frozen=True, kw_only=True):
    order_id: Id
    customer_id: Id
    lines: Lines
    total: Money


class OrderConfirmed(Event, frozen=True, kw_only=True):
    order_id: Id
    customer_id: Id
    total: Money


class OrderCancelled(Event, frozen=True, kw_only=True):
    order_id: Id
    customer_id: Id
    reason: Reason


class OrderShipped(Event, frozen=True, kw_only=True):
    order_id: Id
    carrier: str
    tracking_code: str


class OrderDelivered(Event, frozen=True, kw_only=True):
    order_id: Id
