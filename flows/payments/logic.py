"""Payments of one order as a state machine around the gateway port.

``plan`` decides, from the state and a command, either the gateway call to make (with
its idempotency key, stable across retries and replays) or an immediate answer (a
duplicate, a command that does not apply); an authorization is paid with a one-time card
token or with a saved payment method, charged with the provider's customer it is attached
to. ``settle`` folds the gateway's result into the state and says which event to publish.
Neither does I/O; the wiring calls the gateway in between. Money is integer minor units; a
card is charged at most once per order because every call for an order and operation
carries the same idempotency key.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from flows.outcome import Send, event
from flows.payments.port import Approved, Call, Declined, GatewayResult
from topology.messages import (
    AuthorizePayment,
    AuthorizePaymentV2,
    CapturePayment,
    CardToken,
    Message,
    Money,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRefunded,
    PaymentSource,
    PaymentVoided,
    RefundPayment,
    SavedMethod,
    VoidPayment,
)
from topology.topics import PAYMENT_EVENTS

Status = Literal["new", "authorized", "captured", "voided", "refunded", "declined"]


@dataclass(frozen=True)
class Payment:
    order_id: str
    status: Status = "new"
    payment_id: str | None = None
    amount: Money | None = None
    refunded: int = 0
    refunds_done: frozenset[str] = frozenset()


Plan = Call | list[Send]


def _event(order_id: str, message: Message) -> list[Send]:
    return [event(PAYMENT_EVENTS, order_id, message)]  # an authorization's outcome also answers the order's saga


def _authorization(order_id: str, amount: Money, source: PaymentSource) -> Call:
    """The one authorization of an order (one key, whatever pays it)."""
    key = f"{order_id}:authorize"
    match source:
        case SavedMethod(payment_method_id=method, gateway_customer_id=customer):
            return Call("authorize", key, amount=amount, payment_method=method, customer=customer)
        case CardToken(token=token):
            return Call("authorize", key, amount=amount, token=token)


def _authorize(payment: Payment | None, order_id: str, amount: Money, source: PaymentSource) -> tuple[Payment, Plan]:
    """The authorization to ask for, or, for an order that has had its answer, that answer again."""
    payment = payment or Payment(order_id)
    if payment.status == "new":
        return payment, _authorization(order_id, amount, source)
    if payment.status == "declined":
        return payment, _event(order_id, PaymentDeclined(order_id=order_id, reason="card_declined"))
    if payment.payment_id is None or payment.amount is None:  # voided before it was ever authorized
        return payment, _event(order_id, PaymentDeclined(order_id=order_id, reason="order cancelled"))
    return payment, _event(
        order_id, PaymentAuthorized(order_id=order_id, payment_id=payment.payment_id, amount=payment.amount)
    )


def plan(payment: Payment | None, command: Message, command_id: str) -> tuple[Payment, Plan]:
    """The gateway call a command needs, or what to answer without one."""
    match command:
        case AuthorizePayment(order_id=order_id, amount=amount, payment_token=token):
            return _authorize(payment, order_id, amount, CardToken(token))
        case AuthorizePaymentV2(order_id=order_id, amount=amount, payment=source):
            return _authorize(payment, order_id, amount, source)
        case CapturePayment(order_id=order_id):
            payment = payment or Payment(order_id)
            if payment.status == "authorized":
                return payment, Call("capture", f"{order_id}:capture", payment_id=payment.payment_id)
            return payment, []
        case VoidPayment(order_id=order_id):
            payment = payment or Payment(order_id)
            if payment.status == "authorized":
                return payment, Call("void", f"{order_id}:void", payment_id=payment.payment_id)
            if payment.status == "new":  # nothing authorized yet: refuse any later authorization
                return replace(payment, status="voided"), []
            return payment, []
        case RefundPayment(order_id=order_id, amount=amount):
            payment = payment or Payment(order_id)
            if payment.status not in ("captured", "refunded") or command_id in payment.refunds_done:
                return payment, []
            captured = payment.amount.amount if payment.amount else 0
            grant = min(amount.amount, captured - payment.refunded)
            if grant <= 0:
                return payment, []
            return payment, Call(
                "refund",
                f"{order_id}:refund:{command_id}",
                amount=Money(grant, amount.currency),
                payment_id=payment.payment_id,
            )
    raise ValueError(f"payments does not handle {type(command).__name__}")  # the wiring routes by type


def settle(payment: Payment, call: Call, result: GatewayResult, command_id: str) -> tuple[Payment, list[Send]]:
    """Fold the gateway's answer into the state; a decline is an event, not an exception."""
    order_id = payment.order_id
    match call.operation, result:
        case "authorize", Approved(payment_id=payment_id):
            assert call.amount is not None
            done = replace(payment, status="authorized", payment_id=payment_id, amount=call.amount)
            return done, _event(
                order_id, PaymentAuthorized(order_id=order_id, payment_id=payment_id, amount=call.amount)
            )
        case "authorize", Declined(reason=reason):
            return replace(payment, status="declined"), _event(
                order_id, PaymentDeclined(order_id=order_id, reason=reason)
            )
        case "capture", Approved():
            assert payment.payment_id is not None and payment.amount is not None
            return replace(payment, status="captured"), _event(
                order_id, PaymentCaptured(order_id=order_id, payment_id=payment.payment_id, amount=payment.amount)
            )
        case "void", Approved():
            assert payment.payment_id is not None
            return replace(payment, status="voided"), _event(
                order_id, PaymentVoided(order_id=order_id, payment_id=payment.payment_id)
            )
        case "refund", Approved():
            assert call.amount is not None and payment.payment_id is not None
            done = replace(
                payment,
                status="refunded",
                refunded=payment.refunded + call.amount.amount,
                refunds_done=payment.refunds_done | {command_id},
            )
            return done, _event(
                order_id, PaymentRefunded(order_id=order_id, payment_id=payment.payment_id, amount=call.amount)
            )
    return payment, []  # a refused capture, void or refund leaves the state as it is
