"""Wiring of the orders saga. Step ids are a state contract: never rename one without a migration note.

Run: ``python -m bytewax.run "flows.orders.flow:build_flow()"`` (``shopstream flow orders``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.operators import StatefulLogic
from bytewax.outputs import Sink

from flows import streams
from flows.orders import logic
from flows.outcome import Send
from flows.streams import Cause, Incoming, Out
from topology.messages import (
    AdjustStock,
    CancelOrder,
    MarkOrderDelivered,
    MarkOrderShipped,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRefunded,
    PaymentVoided,
    PlaceOrder,
    RequestRefund,
    StockRejected,
    StockReserved,
    UpsertProduct,
)
from topology.settings import Settings
from topology.topics import CATALOG_COMMANDS, INVENTORY_COMMANDS, PARTNER_COMMANDS

SERVICE = "orders"
SAGA_MESSAGES = (
    PlaceOrder,
    CancelOrder,
    MarkOrderShipped,
    MarkOrderDelivered,
    RequestRefund,
    StockReserved,
    StockRejected,
    PaymentAuthorized,
    PaymentDeclined,
    PaymentCaptured,
    PaymentVoided,
    PaymentRefunded,
)
FORWARDED = (AdjustStock, UpsertProduct)  # partner commands this flow validates and passes on


class OrderSaga(StatefulLogic[Incoming, list[Out], Any]):
    """One order's state; wakes at its deadline to cancel a step that got no answer.

    Bytewax keeps the last time ``notify_at`` gave for a key until it fires: answering None
    later does not remove it. Left alone, every order that moved on kept its 30 s deadline
    there, and Bytewax walks all of them twice per activation (rate x 30 s entries: the
    cost grew with the load). So once an order has nothing due, ``notify_at`` answers
    "now" once, the stale entry fires at once (``on_notify`` then does nothing), and the
    next answer is None.
    """

    def __init__(self, resume: tuple[logic.Order, Cause, int] | None, prefix: str) -> None:
        self.order: logic.Order | None = resume[0] if resume is not None else None
        self.cause: Cause | None = resume[1] if resume is not None else None
        self.version = resume[2] if resume is not None else 0  # of the order, carried by its events as seq
        self.prefix = prefix
        self.scheduled: datetime | None = None  # what Bytewax holds for this key (not snapshotted: a load starts empty)

    def _emit(self, sends: list[Send], cause: Cause) -> list[list[Out]]:
        outs, self.version = streams.emit_versioned(sends, cause, SERVICE, self.prefix, self.version)
        return [outs]

    def on_item(self, value: Incoming) -> tuple[list[list[Out]], bool]:
        self.cause = Cause.of(value.envelope)
        self.order, sends = logic.handle(self.order, value.envelope.payload, value.envelope.occurred_at)
        return self._emit(sends, self.cause), self.order is None  # DISCARD when None

    def notify_at(self) -> datetime | None:
        due = None if self.order is None or self.order.status in logic.TERMINAL else self.order.deadline
        if due is None and self.scheduled is not None:
            due = datetime.now(UTC)  # fire the stale entry now rather than at its old deadline
        self.scheduled = due
        return due

    def on_notify(self) -> tuple[list[list[Out]], bool]:
        self.scheduled = None  # Bytewax dropped its entry before calling
        # A wake-up for a deadline the order has since left behind changes nothing (on_timeout checks too).
        if self.order is None or self.cause is None or self.order.deadline is None:
            return [], StatefulLogic.RETAIN
        now = datetime.now(UTC)
        timer = Cause(
            f"{self.order.order_id}:timeout:{self.order.deadline.isoformat()}",
            self.cause.correlation_id,
            self.cause.traceparent,
            now,
        )
        self.order, sends = logic.on_timeout(self.order, now)
        return self._emit(sends, timer), StatefulLogic.RETAIN

    def snapshot(self) -> tuple[logic.Order, Cause, int] | None:
        if self.order is None or self.cause is None:
            return None
        return (self.order, self.cause, self.version)


def forward(item: Incoming, prefix: str) -> list[Out]:
    """A partner's stock or product command, validated, passed to the flow that owns it."""
    payload = item.envelope.payload
    assert isinstance(payload, FORWARDED)
    topic = INVENTORY_COMMANDS if isinstance(payload, AdjustStock) else CATALOG_COMMANDS
    return streams.emit([Send(topic, payload.sku, payload)], Cause.of(item.envelope), SERVICE, prefix)


def build_flow(
    source: Source[Any] | None = None, sink: Sink[Any] | None = None, settings: Settings | None = None
) -> Dataflow:
    begun = streams.start(SERVICE, source, settings)
    settings, prefix, process = begun.settings, begun.prefix, begun.process
    flow, raw = begun.flow, begun.raw
    strict = frozenset({PARTNER_COMMANDS.name_for(prefix)})
    valid, dead = streams.split(raw, SERVICE, SAGA_MESSAGES + FORWARDED, process.consumes, prefix, strict)
    routed = op.branch("route", valid, lambda item: isinstance(item.envelope.payload, FORWARDED))
    forwarded = op.flat_map("forward", routed.trues, lambda item: forward(item, prefix))
    keyed = op.key_on("key", routed.falses, lambda item: item.envelope.payload.order_id)  # type: ignore[attr-defined]
    saga = op.stateful("saga", keyed, lambda resume: OrderSaga(resume, prefix))
    emitted = op.flat_map("flatten", saga, lambda key_outs: key_outs[1])
    streams.output(op.merge("all", emitted, forwarded, dead), sink, settings)
    return flow
