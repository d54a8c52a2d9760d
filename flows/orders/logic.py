"""The order lifecycle as a pure state machine keyed by order id.

placed -> reserving (one ReserveStock per SKU) -> authorizing (AuthorizePayment) ->
confirmed (CommitStock, CapturePayment) -> shipped -> delivered.

An order is paid with what it was placed with: a one-time card token (authorized as
``AuthorizePayment`` version 1, which every payments flow reads) or a saved payment method of
the provider's customer (version 2).

Prices are the catalog's, never the sender's: each reservation answers with the unit price
the inventory flow held its units at, and once every SKU is reserved the saga totals the
order from those answers and announces it (``OrderPlaced``, priced) before authorizing that
total. An order cancelled before (a SKU out of stock or without a catalog price, lines in
several currencies, a cancel or a timeout while reserving) has ``OrderCancelled`` as its
first event. A rejection, a decline, a
customer's cancel before shipment or a step that gets no answer before its deadline
cancels the order and compensates: reserved stock is released (committed stock is put
back), an authorization is voided, a capture is refunded. Answers that arrive after the
order moved on are compensated too (a late reservation is released, a late authorization
voided). Duplicates change nothing, wherever they come (refunds are remembered by message
id). No I/O, no clock: time comes in with each message (``now``), and a deadline is acted
on only when an ``ExpireOrderStep`` for it arrives: the wiring sends that to the order's own
log when the wall clock passes the deadline, so the decision has a place in the log and a
replay takes it where the first run did.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from flows.outcome import Send
from topology.messages import (
    AdjustStock,
    AuthorizePayment,
    AuthorizePaymentV2,
    CancelOrder,
    CapturePayment,
    CommitStock,
    ExpireOrderStep,
    MarkOrderDelivered,
    MarkOrderShipped,
    Message,
    Money,
    OrderCancelled,
    OrderConfirmed,
    OrderDelivered,
    OrderLine,
    OrderPlaced,
    OrderShipped,
    PaymentAuthorized,
    PaymentDeclined,
    PlaceOrder,
    PlaceOrderV2,
    PlaceOrderV3,
    RefundPayment,
    ReleaseStock,
    RequestRefund,
    ReserveStock,
    SavedMethod,
    SendNotification,
    StockRejected,
    StockReserved,
    VoidPayment,
)
from topology.topics import INVENTORY_COMMANDS, NOTIFICATION_COMMANDS, ORDER_EVENTS, PAYMENT_COMMANDS

Status = Literal["reserving", "authorizing", "confirmed", "shipped", "delivered", "cancelled"]
Payment = Literal["none", "authorizing", "authorized", "captured", "voided", "refunded", "declined"]
TERMINAL: frozenset[Status] = frozenset({"confirmed", "shipped", "delivered", "cancelled"})

RESERVE_TIMEOUT = timedelta(seconds=30)
PAYMENT_TIMEOUT = timedelta(seconds=30)


@dataclass(frozen=True)
class Deadlines:
    """How long each step waits for its answer before the order is cancelled."""

    reserve: timedelta = RESERVE_TIMEOUT
    payment: timedelta = PAYMENT_TIMEOUT


DEADLINES = Deadlines()


@dataclass(frozen=True)
class Order:
    order_id: str
    customer_id: str
    quantities: tuple[tuple[str, int], ...]  # (sku, quantity), one entry per SKU
    total: Money | None  # None until every SKU is reserved and so priced
    payment_token: str  # the one-time card token ("" for an order paid with a saved method)
    status: Status
    deadline: datetime | None
    pending: frozenset[str] = frozenset()  # SKUs whose reservation has no answer yet
    reserved: frozenset[str] = frozenset()  # SKUs holding stock for this order
    committed: bool = False
    payment: Payment = "none"
    payment_id: str | None = None
    refunded: int = 0  # minor units this order has asked the gateway to refund
    reason: str = ""
    seen_refunds: frozenset[str] = field(default_factory=frozenset)  # ids of the RequestRefunds applied
    prices: tuple[tuple[str, Money], ...] = ()  # (sku, unit price its stock was reserved at), as answered
    saved_method: SavedMethod | None = None  # the saved payment method it is paid with, if not a token

    @property
    def quantity(self) -> dict[str, int]:
        return dict(self.quantities)


Result = tuple[Order | None, list[Send]]


def _send_event(order: Order, message: Message) -> Send:
    return Send(ORDER_EVENTS, order.order_id, message)


def _notify(order: Order, template: str, body: str) -> Send:
    return Send(
        NOTIFICATION_COMMANDS,
        order.customer_id,
        SendNotification(
            notification_id=f"{order.order_id}.{template}",
            user_id=order.customer_id,
            channel="email",
            template=template,
            subject=f"Order {order.order_id}",
            body=body,
        ),
    )


PlaceOrders = PlaceOrder | PlaceOrderV2 | PlaceOrderV3


def _paid_with(command: PlaceOrders) -> tuple[str, SavedMethod | None]:
    """The order's one-time card token, or ("", its saved payment method)."""
    if isinstance(command, PlaceOrderV3):
        source = command.payment
        return ("", source) if isinstance(source, SavedMethod) else (source.token, None)
    return command.payment_token, None


def place(command: PlaceOrders, now: datetime, deadlines: Deadlines = DEADLINES) -> Result:
    """Reserve every SKU of the order; a version 1 command's unit prices are not read."""
    quantities: dict[str, int] = {}
    for line in command.lines:
        quantities[line.sku] = quantities.get(line.sku, 0) + line.quantity
    token, saved = _paid_with(command)
    order = Order(
        order_id=command.order_id,
        customer_id=command.customer_id,
        quantities=tuple(sorted(quantities.items())),
        total=None,
        payment_token=token,
        status="reserving",
        deadline=now + deadlines.reserve,
        pending=frozenset(quantities),
        saved_method=saved,
    )
    reserve = [
        Send(INVENTORY_COMMANDS, sku, ReserveStock(sku=sku, order_id=order.order_id, quantity=qty))
        for sku, qty in order.quantities
    ]
    return order, reserve


def _reserved(order: Order, now: datetime, deadlines: Deadlines) -> Result:
    """Every SKU is reserved: the order priced from the reservations' answers, announced, then authorized."""
    if order.total is not None:  # an order placed when the sender's prices were taken: announced then
        return _authorize(order, now, deadlines)
    prices = dict(order.prices)
    currencies = {price.currency for price in prices.values()}
    if len(currencies) > 1:
        return _cancel(order, f"mixed currencies: {', '.join(sorted(currencies))}")
    total = Money(sum(qty * prices[sku].amount for sku, qty in order.quantities), currencies.pop())
    lines = [OrderLine(sku=sku, quantity=qty, unit_price=prices[sku]) for sku, qty in order.quantities]
    placed = OrderPlaced(order_id=order.order_id, customer_id=order.customer_id, lines=lines, total=total)
    authorizing, sends = _authorize(replace(order, total=total), now, deadlines)
    return authorizing, [_send_event(order, placed), *sends]


def _cancelled_events(order: Order) -> list[Send]:
    return [
        _send_event(order, OrderCancelled(order_id=order.order_id, customer_id=order.customer_id, reason=order.reason)),
        _notify(order, "order-cancelled", f"Your order was cancelled: {order.reason}."),
    ]


def _cancel(order: Order, reason: str) -> Result:
    """Cancel and compensate everything the order holds."""
    sends: list[Send] = []
    for sku in sorted(order.reserved):
        if order.committed:
            sends.append(
                Send(
                    INVENTORY_COMMANDS,
                    sku,
                    AdjustStock(sku=sku, delta=order.quantity[sku], reason=f"order {order.order_id} cancelled"),
                )
            )
        else:
            sends.append(Send(INVENTORY_COMMANDS, sku, ReleaseStock(sku=sku, order_id=order.order_id)))
    # A confirmed order asked for its capture then (the saga does not wait for the answer): only a refund undoes it.
    payment = "captured" if order.committed else order.payment
    if payment in ("authorizing", "authorized"):
        sends.append(Send(PAYMENT_COMMANDS, order.order_id, VoidPayment(order_id=order.order_id)))
        payment = "voided"
    elif payment == "captured" and order.total is not None:
        remaining = order.total.amount - order.refunded
        if remaining > 0:
            sends.append(
                Send(
                    PAYMENT_COMMANDS,
                    order.order_id,
                    RefundPayment(
                        order_id=order.order_id, amount=Money(remaining, order.total.currency), reason=reason
                    ),
                )
            )
        payment = "refunded"
    cancelled = replace(order, status="cancelled", deadline=None, reserved=frozenset(), reason=reason, payment=payment)
    return cancelled, [*sends, *_cancelled_events(cancelled)]


def _authorize(order: Order, now: datetime, deadlines: Deadlines) -> Result:
    assert order.total is not None  # priced by _reserved before
    authorizing = replace(order, status="authorizing", payment="authorizing", deadline=now + deadlines.payment)
    command: Message = AuthorizePayment(order_id=order.order_id, amount=order.total, payment_token=order.payment_token)
    if order.saved_method is not None:
        command = AuthorizePaymentV2(order_id=order.order_id, amount=order.total, payment=order.saved_method)
    return authorizing, [Send(PAYMENT_COMMANDS, order.order_id, command)]


def _confirm(order: Order, payment_id: str) -> Result:
    assert order.total is not None  # authorized for it
    confirmed = replace(
        order, status="confirmed", deadline=None, payment="authorized", payment_id=payment_id, committed=True
    )
    sends = [
        _send_event(order, OrderConfirmed(order_id=order.order_id, customer_id=order.customer_id, total=order.total)),
        *[
            Send(INVENTORY_COMMANDS, sku, CommitStock(sku=sku, order_id=order.order_id))
            for sku in sorted(order.reserved)
        ],
        Send(PAYMENT_COMMANDS, order.order_id, CapturePayment(order_id=order.order_id)),
        _notify(order, "order-confirmed", f"Your order {order.order_id} is confirmed."),
    ]
    return confirmed, sends


def handle(
    order: Order | None, message: Message, now: datetime, message_id: str, deadlines: Deadlines = DEADLINES
) -> Result:
    """Apply one command or event (``message_id`` is its envelope id) to the order.

    Returns the new state and what to send.
    """
    if isinstance(message, PlaceOrders):
        return (order, []) if order is not None else place(message, now, deadlines)
    if order is None:
        return _orphan(message)
    match message:
        case StockReserved(sku=sku, unit_price=unit_price):
            if order.status == "reserving" and sku in order.pending:
                order = replace(order, pending=order.pending - {sku}, reserved=order.reserved | {sku})
                if unit_price is None:  # an answer from an inventory that kept no prices: nothing to charge by
                    return _cancel(order, f"{sku} has no catalog price")
                order = replace(order, prices=(*order.prices, (sku, unit_price)))
                return _reserved(order, now, deadlines) if not order.pending else (order, [])
            if sku in order.pending:  # the order moved on while this reservation was in flight: give it back
                released = replace(order, pending=order.pending - {sku})
                return released, [Send(INVENTORY_COMMANDS, sku, ReleaseStock(sku=sku, order_id=order.order_id))]
            return order, []
        case StockRejected(sku=sku, available=available, reason=reason):
            if sku not in order.pending:
                return order, []
            order = replace(order, pending=order.pending - {sku})
            if order.status == "reserving":
                return _cancel(order, reason or f"out of stock: {sku} (available {available})")
            return order, []
        case PaymentAuthorized(payment_id=payment_id):
            if order.status == "authorizing":
                return _confirm(order, payment_id)
            if order.payment in ("voided", "none", "declined"):
                # late authorization of a cancelled order: void it (the void is idempotent at the gateway)
                return replace(order, payment_id=payment_id), [
                    Send(PAYMENT_COMMANDS, order.order_id, VoidPayment(order_id=order.order_id))
                ]
            return order, []
        case PaymentDeclined(reason=reason):
            if order.status == "authorizing":
                return _cancel(replace(order, payment="declined"), f"payment declined: {reason}")
            return order, []
        case CancelOrder(reason=reason):
            if order.status in ("reserving", "authorizing", "confirmed"):
                return _cancel(order, reason)
            return order, []
        case MarkOrderShipped(carrier=carrier, tracking_code=code):
            if order.status == "confirmed":
                shipped = replace(order, status="shipped")
                return shipped, [
                    _send_event(order, OrderShipped(order_id=order.order_id, carrier=carrier, tracking_code=code)),
                    _notify(
                        order,
                        "order-shipped",
                        f"Your order {order.order_id} is on its way with {carrier}, tracking code {code}.",
                    ),
                ]
            return order, []
        case MarkOrderDelivered():
            if order.status == "shipped":
                return replace(order, status="delivered"), [
                    _send_event(order, OrderDelivered(order_id=order.order_id)),
                    _notify(order, "order-delivered", f"Your order {order.order_id} was delivered."),
                ]
            return order, []
        case RequestRefund(amount=amount, reason=reason):
            if message_id in order.seen_refunds:
                return order, []
            return _refund(replace(order, seen_refunds=order.seen_refunds | {message_id}), amount, reason)
        case ExpireOrderStep(deadline=deadline):
            return _expire(order, deadline)
    return order, []


def _refund(order: Order, amount: Money, reason: str) -> Result:
    total = order.total
    if order.status not in ("confirmed", "shipped", "delivered") or total is None or amount.currency != total.currency:
        return order, []
    remaining = total.amount - order.refunded
    grant = min(amount.amount, remaining)
    if grant <= 0:
        return order, []
    refund = RefundPayment(order_id=order.order_id, amount=Money(grant, amount.currency), reason=reason)
    return replace(order, refunded=order.refunded + grant), [Send(PAYMENT_COMMANDS, order.order_id, refund)]


def _orphan(message: Message) -> Result:
    """An answer for an order this flow never saw placed: compensate what the answer holds."""
    match message:
        case StockReserved(sku=sku, order_id=order_id):
            return None, [Send(INVENTORY_COMMANDS, sku, ReleaseStock(sku=sku, order_id=order_id))]
        case PaymentAuthorized(order_id=order_id):
            return None, [Send(PAYMENT_COMMANDS, order_id, VoidPayment(order_id=order_id))]
    return None, []


def _expire(order: Order, deadline: datetime) -> Result:
    """The step that set ``deadline`` got no answer in time: cancel, unless the order has moved on."""
    if order.deadline != deadline or order.status in TERMINAL:
        return order, []
    step = "stock reservation" if order.status == "reserving" else "payment authorization"
    return _cancel(order, f"{step} timed out")


def order_line(sku: str, quantity: int, amount: int, currency: str = "EUR") -> OrderLine:
    """A priced line, as the order's events carry it (tests, benchmarks)."""
    return OrderLine(sku=sku, quantity=quantity, unit_price=Money(amount, currency))
