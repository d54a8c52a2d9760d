"""Payments through the gateway port, keyed by order id."""

from __future__ import annotations

from typing import Annotated

import msgspec

from topology.messages.base import Command, Event, Id, Money, Reason

Token = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class CardToken(msgspec.Struct, frozen=True, tag="card_token"):
    """A one-time card token from the provider's client-side tokenization."""

    token: Token


class SavedMethod(msgspec.Struct, frozen=True, tag="saved_method"):
    """A payment method the provider keeps for one of its customers, charged with that customer."""

    payment_method_id: Id
    gateway_customer_id: Id


#: What an order is paid with (the ``type`` field tells which).
PaymentSource = CardToken | SavedMethod


class AuthorizePayment(Command, frozen=True, kw_only=True):
    """Version 1: a one-time card token only (the saga still sends it for a token, so any reader takes it)."""

    order_id: Id
    amount: Money
    payment_token: Token


class AuthorizePaymentV2(Command, frozen=True, kw_only=True):
    """Authorize an order's total with a one-time token or a saved payment method."""

    TYPE = "AuthorizePayment"
    VERSION = 2

    order_id: Id
    amount: Money
    payment: PaymentSource


class CapturePayment(Command, frozen=True, kw_only=True):
    order_id: Id


class VoidPayment(Command, frozen=True, kw_only=True):
    order_id: Id


class RefundPayment(Command, frozen=True, kw_only=True):
    order_id: Id
    amount: Money
    reason: Reason


class PaymentAuthorized(Event, frozen=True, kw_only=True):
    order_id: Id
    payment_id: Id
    amount: Money


class PaymentDeclined(Event, frozen=True, kw_only=True):
    order_id: Id
    reason: Reason


class PaymentCaptured(Event, frozen=True, kw_only=True):
    order_id: Id
    payment_id: Id
    amount: Money


class PaymentVoided(Event, frozen=True, kw_only=True):
    order_id: Id
    payment_id: Id


class PaymentRefunded(Event, frozen=True, kw_only=True):
    order_id: Id
    payment_id: Id
    amount: Money
