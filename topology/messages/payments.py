"""Payments through the gateway port, keyed by order id."""

from __future__ import annotations

from typing import Annotated

import msgspec

from topology.messages.base import Command, Event, Id, Money, Reason

Token = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class AuthorizePayment(Command, frozen=True, kw_only=True):
    order_id: Id
    amount: Money
    payment_token: Token


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
