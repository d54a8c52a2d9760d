"""Wiring of the orders saga. Step ids are a state contract: never rename one without a migration note.

The saga reads one topic, its inbox, keyed by order id: the flow forwards to it the order
commands from the ingress and partners, inventory and payments put there the answers the
saga acts on (besides their event topics: ``flows.outcome.event``), and the saga sends its
own deadline expiries there too. So each order's messages form one log. A restart after a
crash replays that log in the same order and the saga decides as the first run did: what
the first run already sent is sent again byte for byte (same ids, absorbed downstream),
never contradicted. Answers read from several topics could replay in another interleaving
(or meet a deadline the first run had not) and cancel an order whose stock commit and
capture had already gone out: that is why the saga reads nothing but its inbox.

Partners write to topics of their own (``shop.partner.{partner}.commands``, every one the
broker lists, and new ones as they appear: ``flows.kafka_input``): each command is admitted
for the partner the topic names (``topology.partners``), or refused to the partners' DLQ
with the reason. An admitted order goes to the inbox untouched; a stock or product command
goes to the flow that owns the SKU, carrying the partner as its ``partner_id`` or
``owner_partner_id``.

Run: ``python -m flows run orders`` (``shopstream flow orders``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.operators import StatefulLogic
from bytewax.outputs import Sink

from flows import steps, templates, tracing
from flows.dead_letters import dead_letter
from flows.envelopes import Cause, Incoming, derived_id, emit
from flows.kafka_input import In
from flows.kafka_output import Out
from flows.orders import logic
from flows.outcome import Send
from topology.envelope import decode
from topology.exceptions import DecodeError
from topology.messages import AdjustStock, ExpireOrderStep, PlaceOrderV2
from topology.partners import admit
from topology.settings import Settings
from topology.topics import CATALOG_COMMANDS, INVENTORY_COMMANDS, ORDER_INBOX, PARTNER_COMMANDS, DeclaredMessages
from topology.tracing import record_headers

SERVICE = "orders"
log = logging.getLogger(__name__)


#: The steps of an order logged at INFO (placed, and where it ends up); the steps between at DEBUG.
NOTED = frozenset({"reserving", "confirmed", "shipped", "delivered"})


def log_status(order: logic.Order, before: str | None, correlation_id: str) -> None:
    """One line per step of an order's story (a replay after a crash tells it again); a cancel is a WARNING."""
    cancelled = order.status == "cancelled"
    level = logging.WARNING if cancelled else logging.INFO if order.status in NOTED else logging.DEBUG
    if not log.isEnabledFor(level):
        return
    log.log(
        level,
        "order %s %s -> %s%s",
        order.order_id,
        before or "new",
        order.status,
        f": {order.reason}" if cancelled and order.reason else "",
        extra={
            "shop.order_id": order.order_id,
            "labels.correlation_id": correlation_id,
            "event.action": f"order-{order.status}",
        },
    )


class OrderSaga(StatefulLogic[Incoming, list[Out], Any]):
    """One order's state; wakes at its deadline and sends the order an ``ExpireOrderStep``.

    The expiry goes through the inbox: the order is cancelled when the saga reads it back
    (if the step is still waiting then), so the decision sits in the order's log.

    Bytewax keeps the last time ``notify_at`` gave for a key until it fires: answering None
    later does not remove it, and Bytewax walks every entry it holds twice per activation.
    So once an order has nothing due, ``notify_at`` answers "now" once, the stale entry
    fires at once (``on_notify`` then does nothing), and the next answer is None: only
    orders still waiting on a deadline hold an entry.
    """

    def __init__(
        self, resume: tuple[logic.Order, Cause, int] | None, prefix: str, deadlines: logic.Deadlines = logic.DEADLINES
    ) -> None:
        self.order: logic.Order | None = resume[0] if resume is not None else None
        self.cause: Cause | None = resume[1] if resume is not None else None
        self.version = resume[2] if resume is not None else 0  # of the order, carried by its events as seq
        self.prefix = prefix
        self.deadlines = deadlines
        self.scheduled: datetime | None = None  # what Bytewax holds for this key (not snapshotted: a load starts empty)
        # The deadline whose expiry is on its way through the inbox. Not snapshotted: after a
        # restart a passed deadline sends its expiry again, with the same id (a no-op if both come).
        self.expiring: datetime | None = None

    def _emit(self, sends: list[Send], cause: Cause) -> list[list[Out]]:
        outs, self.version = emit(sends, cause, SERVICE, self.prefix, self.version)
        return [outs]

    def on_item(self, value: Incoming) -> tuple[list[list[Out]], bool]:
        envelope = value.envelope
        self.cause = Cause.of(envelope)
        before = self.order.status if self.order is not None else None
        self.order, sends = logic.handle(
            self.order, envelope.payload, envelope.occurred_at, envelope.id, self.deadlines
        )
        if self.order is not None and self.order.status != before:
            log_status(self.order, before, envelope.correlation_id)
        return self._emit(sends, self.cause), self.order is None  # DISCARD when None

    def _unexpired(self) -> datetime | None:
        """The deadline the order waits on whose expiry has not been sent yet, if any."""
        order = self.order
        if order is None or order.status in logic.TERMINAL or order.deadline == self.expiring:
            return None
        return order.deadline

    def notify_at(self) -> datetime | None:
        due = self._unexpired()  # an expiry already sent: the inbox brings it back
        if due is None and self.scheduled is not None:
            due = datetime.now(UTC)  # fire the stale entry now rather than at its old deadline
        self.scheduled = due
        return due

    def on_notify(self) -> tuple[list[list[Out]], bool]:
        self.scheduled = None  # Bytewax dropped its entry before calling
        order, deadline, now = self.order, self._unexpired(), datetime.now(UTC)
        # A wake-up for a deadline the order has since left behind, or already sent, changes nothing.
        if order is None or self.cause is None or deadline is None or now < deadline:
            return [], StatefulLogic.RETAIN
        self.expiring = deadline
        # The id depends only on the order and the deadline: a restart that sends it again sends the same one.
        timer = Cause(
            f"{order.order_id}:timeout:{deadline.isoformat()}", self.cause.correlation_id, self.cause.traceparent, now
        )
        expire = ExpireOrderStep(order_id=order.order_id, deadline=deadline)
        return self._emit([Send(ORDER_INBOX, order.order_id, expire)], timer), StatefulLogic.RETAIN

    def snapshot(self) -> tuple[logic.Order, Cause, int] | None:
        if self.order is None or self.cause is None:
            return None
        return (self.order, self.cause, self.version)


def to_inbox(item: Incoming, inbox: str) -> Out:
    """An order command, validated, passed to the saga's inbox untouched, keyed by its order (and traced on)."""
    order_id: str = item.envelope.payload.order_id  # type: ignore[attr-defined]
    return Out(key=order_id.encode(), value=item.value, topic=inbox, headers=record_headers())


def from_partner(msg: In, prefix: str, declared: DeclaredMessages) -> list[Out]:
    """A record of a partner's topic: admitted and passed on (see the module's docstring), or a dead letter."""
    topic_name = msg.topic or ""
    partner_id = PARTNER_COMMANDS.partner_of(topic_name, prefix)
    dlq = PARTNER_COMMANDS.dead_letter.name_for(prefix)  # type: ignore[union-attr]
    try:
        envelope = decode(msg.value, strict=True)
    except DecodeError as err:
        return [dead_letter(msg, str(err), SERVICE, dlq_topic=dlq, kind="undecodable")]
    misplaced = declared.misplaced(topic_name, envelope)
    admitted = admit(partner_id or "", envelope) if misplaced is None else misplaced
    if isinstance(admitted, str):
        return [dead_letter(msg, admitted, SERVICE, dlq_topic=dlq)]
    if isinstance(admitted, PlaceOrderV2):
        return [Out(key=admitted.order_id.encode(), value=msg.value, topic=ORDER_INBOX.name_for(prefix))]
    sku: str = admitted.sku  # type: ignore[attr-defined]
    topic = INVENTORY_COMMANDS if isinstance(admitted, AdjustStock) else CATALOG_COMMANDS
    # The ids a partner picks are scoped to the partner: one partner's cannot shadow another's downstream.
    cause = Cause.of(envelope)
    cause = Cause(derived_id(envelope.id, 0, f"partner:{partner_id}"), cause.correlation_id, None, cause.occurred_at)
    records, _ = emit([Send(topic, sku, admitted)], cause, SERVICE, prefix)
    return records


def build_flow(
    source: Source[Any] | None = None, sink: Sink[Any] | None = None, settings: Settings | None = None
) -> Dataflow:
    begun = templates.start(SERVICE, source, settings)
    settings, prefix, process = begun.settings, begun.prefix, begun.process
    flow, raw = begun.flow, begun.raw
    inbox = ORDER_INBOX.name_for(prefix)
    declared = DeclaredMessages(process.consumes, prefix)
    sent = op.branch("from_partner", raw, lambda msg: PARTNER_COMMANDS.partner_of(msg.topic or "", prefix) is not None)
    admitted = op.flat_map("admit_partner", sent.trues, lambda msg: from_partner(msg, prefix, declared))
    routed = steps.decode_and_route(
        "decode_and_route", sent.falses, SERVICE, ORDER_INBOX.messages, process.consumes, prefix
    )
    read = op.branch("inbox", routed.handled, lambda item: item.topic == inbox)
    queued = op.map("queue", read.falses, tracing.traced_map(lambda item: to_inbox(item, inbox), SERVICE))
    keyed = op.key_on("key_by_order_id", read.trues, attrgetter("envelope.payload.order_id"))
    step = timedelta(seconds=settings.order_step_timeout_s)
    deadlines = logic.Deadlines(reserve=step, payment=step)
    saga = op.stateful(
        "saga", keyed, tracing.traced_logic(lambda resume: OrderSaga(resume, prefix, deadlines), SERVICE)
    )
    templates.output(steps.collect_records("collect_records", saga, admitted, queued, routed.dead), sink, settings)
    return flow
