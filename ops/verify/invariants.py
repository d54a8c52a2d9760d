"""The invariants the event log must keep, each a pure function of the log (and of ``now`` for deadlines).

The rules follow the saga (``docs/flows.md``): every message the saga causes inherits the
``occurred_at`` of the command that placed the order, and each step waits
``SHOP_ORDER_STEP_TIMEOUT_S`` from then, so an order is settled, and its payment confirmed
or given back, by ``occurred_at + step timeout``; ``grace`` is how long the saga may take to
act once that deadline has passed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ops.dlq import DlqRecord
from ops.verify.eventlog import EVENT_TOPICS, Entry, EventLog
from ops.verify.report import Check
from topology.messages import (
    CancelOrder,
    Money,
    NotificationSent,
    OrderCancelled,
    OrderConfirmed,
    OrderDelivered,
    OrderPlaced,
    OrderShipped,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentRefunded,
    PaymentVoided,
    PlaceOrder,
    PlaceOrderV2,
    PlaceOrderV3,
    StockAdjusted,
    StockCommitted,
    StockReleased,
    StockReserved,
)
from topology.topics import (
    INVENTORY_EVENTS,
    NOTIFICATION_EVENTS,
    ORDER_COMMANDS,
    ORDER_EVENTS,
    PARTNER_COMMANDS,
    PAYMENT_EVENTS,
)

#: The order lifecycle: the events that may follow each (None: the first event of an order).
NEXT: dict[type | None, tuple[type, ...]] = {
    None: (OrderPlaced, OrderCancelled),  # cancelled before every SKU was reserved (and so priced)
    OrderPlaced: (OrderConfirmed, OrderCancelled),
    OrderConfirmed: (OrderShipped, OrderCancelled),  # cancelled after confirmation: see one_terminal_state
    OrderShipped: (OrderDelivered,),
    OrderDelivered: (),
    OrderCancelled: (),
}
TERMINAL = (OrderConfirmed, OrderCancelled)


@dataclass(frozen=True)
class Timing:
    """When the saga must have acted on an order placed at some time."""

    step: timedelta
    grace: timedelta
    now: datetime

    def deadline(self, placed_at: datetime) -> datetime:
        return placed_at + self.step

    def overdue(self, placed_at: datetime) -> bool:
        return self.now >= placed_at + self.step + self.grace


def _by_order(entries: Iterable[Entry]) -> dict[str, list[Entry]]:
    found: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        order_id = getattr(entry.payload, "order_id", None)
        if order_id is not None:
            found[order_id].append(entry)
    return found


def _in_seq_order(entries: list[Entry]) -> list[Entry]:
    """Entries by ``seq`` when each has one, else as the log holds them (one key, one partition)."""
    if all(e.envelope.seq is not None for e in entries):
        return sorted(entries, key=lambda e: e.envelope.seq or 0)
    return entries


def _name(entry: Entry) -> str:
    seq = entry.envelope.seq
    return f"{entry.envelope.type} (seq {seq})" if seq is not None else entry.envelope.type


def orders_settled(log: EventLog, timing: Timing) -> Check:
    check = Check(
        "orders-settled",
        "every accepted PlaceOrder (and every OrderPlaced) reached OrderConfirmed or OrderCancelled, "
        "or its deadline has not passed yet",
    )
    accepted: dict[str, Entry] = {}
    for topic in (ORDER_COMMANDS, PARTNER_COMMANDS, ORDER_EVENTS):
        for entry in log.of(topic):
            if isinstance(entry.payload, PlaceOrder | PlaceOrderV2 | PlaceOrderV3 | OrderPlaced):
                first = accepted.get(entry.payload.order_id)
                if first is None or entry.envelope.occurred_at < first.envelope.occurred_at:
                    accepted[entry.payload.order_id] = entry
    settled = {e.payload.order_id for e in log.of(ORDER_EVENTS) if isinstance(e.payload, TERMINAL)}
    in_flight = 0
    for order_id, entry in sorted(accepted.items()):
        check.checked += 1
        placed_at = entry.envelope.occurred_at
        if order_id in settled:
            continue
        if not timing.overdue(placed_at):
            in_flight += 1
            continue
        check.breach(
            f"placed at {placed_at.isoformat()}, neither confirmed nor cancelled; "
            f"its deadline passed at {timing.deadline(placed_at).isoformat()}",
            order_id=order_id,
            record=entry.record,
        )
    check.notes["in flight"] = in_flight
    return check


def one_terminal_state(log: EventLog, command_retention: timedelta, now: datetime) -> Check:
    """No order both confirmed and cancelled, nor confirmed or cancelled twice.

    The one way to both: a customer's CancelOrder after confirmation (the saga refunds the
    capture). Such a cancel older than the command topic keeps cannot be told from a wrong one,
    so it is counted in ``notes`` rather than reported.
    """
    check = Check("one-terminal-state", "no order both confirmed and cancelled (unless a CancelOrder asked), nor twice")
    asked = {p.order_id for _, p in log.messages(ORDER_COMMANDS, CancelOrder)}
    after_confirmation = unjudged = 0
    for order_id, entries in sorted(_by_order(log.of(ORDER_EVENTS)).items()):
        check.checked += 1
        confirmed = [e for e in entries if isinstance(e.payload, OrderConfirmed)]
        cancelled = [e for e in entries if isinstance(e.payload, OrderCancelled)]
        for name, found in (("confirmed", confirmed), ("cancelled", cancelled)):
            if len(found) > 1:
                check.breach(f"{name} {len(found)} times: " + ", ".join(_name(e) for e in found), order_id=order_id)
        if not (confirmed and cancelled):
            continue
        both = f"{_name(confirmed[0])} and {_name(cancelled[0])}"
        if _in_seq_order([confirmed[0], cancelled[0]])[0] is cancelled[0]:
            check.breach(f"cancelled, then confirmed: {both}", order_id=order_id)
        elif order_id in asked:
            after_confirmation += 1
        elif cancelled[0].envelope.occurred_at < now - command_retention:
            unjudged += 1
        else:
            check.breach(f"confirmed and cancelled ({both}), and no CancelOrder asked for it", order_id=order_id)
    check.notes["cancelled after confirmation"] = after_confirmation
    if unjudged:
        check.notes["older than the commands kept"] = unjudged
    return check


def lifecycle(log: EventLog) -> Check:
    """Each order's events, in ``seq`` order, follow ``NEXT`` with no version missing.

    An order whose first version is past the topic's retention is judged from what is left.
    """
    check = Check("lifecycle", "each order's events follow placed > confirmed > shipped > delivered (or cancelled)")
    truncated = 0
    for order_id, entries in sorted(_by_order(log.of(ORDER_EVENTS)).items()):
        check.checked += 1
        versioned = sorted((e for e in entries if e.envelope.seq is not None), key=lambda e: e.envelope.seq or 0)
        if not versioned:
            continue
        cut = (versioned[0].envelope.seq or 0) > 1
        truncated += cut
        previous: Entry | None = None
        for entry in versioned:
            seq = entry.envelope.seq or 0
            before = type(previous.payload) if previous is not None else None
            kind = type(entry.payload)
            if previous is None:
                judged = not cut
            elif seq == previous.envelope.seq:
                continue  # one version given to two events: the event-log check reports it
            elif seq != (previous.envelope.seq or 0) + 1:
                check.breach(f"versions {previous.envelope.seq} to {seq}: events missing in between", order_id=order_id)
                judged = False
            else:
                judged = not (before in TERMINAL and kind in TERMINAL)  # one_terminal_state's to report
            if judged and kind not in NEXT.get(before, ()):
                after = f"after {_name(previous)}" if previous is not None else "as its first event"
                check.breach(f"{_name(entry)} {after}", order_id=order_id, record=entry.record)
            previous = entry
    if truncated:
        check.notes["began before the retention"] = truncated
    return check


def stock(log: EventLog) -> Check:
    """Per SKU, in ``seq`` order: never more sold than stocked, never more reserved than on hand.

    On hand is every adjustment (restock, write-off, a cancelled order's units put back)
    minus what was committed (sold); reserved is what is held and not yet released or
    committed. A SKU whose first event is past the topic's retention is not judged.
    """
    check = Check("stock", "per SKU, units sold never exceed units stocked, nor reservations the units on hand")
    by_sku: dict[str, list[Entry]] = defaultdict(list)
    for entry in log.of(INVENTORY_EVENTS):
        by_sku[getattr(entry.payload, "sku", "")].append(entry)
    truncated = 0
    for sku, entries in sorted(by_sku.items()):
        check.checked += 1
        ordered = _in_seq_order(entries)
        if ordered and (ordered[0].envelope.seq or 1) > 1:
            truncated += 1
            continue
        stocked = sold = reserved = 0
        problems: dict[str, str] = {}
        for entry in ordered:
            p = entry.payload
            match p:
                case StockAdjusted(delta=delta):
                    stocked += delta
                case StockReserved(quantity=quantity):
                    reserved += quantity
                case StockReleased(quantity=quantity):
                    reserved -= quantity
                case StockCommitted(quantity=quantity):
                    reserved -= quantity
                    sold += quantity
            at = f"at {_name(entry)}" + (f" for order {p.order_id}" if hasattr(p, "order_id") else "")
            on_hand = stocked - sold
            if on_hand < 0:
                problems.setdefault("oversold", f"sold {sold} of {stocked} stocked ({at})")
            if reserved > on_hand >= 0:
                problems.setdefault("overbooked", f"{reserved} reserved with {on_hand} on hand ({at})")
            if reserved < 0:
                problems.setdefault("unheld", f"released or committed {-reserved} more than reserved ({at})")
        if problems:
            check.breach("; ".join(problems.values()), sku=sku)
    if truncated:
        check.notes["began before the retention"] = truncated
    return check


@dataclass
class _Sums:
    authorized: int = 0
    captured: int = 0
    voided: int = 0
    refunded: int = 0
    settled_authorized: int = 0

    def add(self, other: _Sums) -> None:
        self.authorized += other.authorized
        self.captured += other.captured
        self.voided += other.voided
        self.refunded += other.refunded
        self.settled_authorized += other.settled_authorized


def money(log: EventLog, timing: Timing) -> Check:
    """Per order and per currency across orders: what was authorized, captured, voided and refunded adds up.

    A payment (one ``payment_id``) is settled once captured or voided; then captured + voided
    equals what was authorized (a void gives back the whole authorization). Nothing is
    captured beyond the authorization nor refunded beyond the capture. Past the order's
    deadline every authorization is settled, a confirmed order captured its total and a
    cancelled one kept nothing (captured = refunded).
    """
    check = Check("money", "captured <= authorized, captured + voided = authorized once settled, refunded <= captured")
    outcomes = _by_order(e for e in log.of(ORDER_EVENTS) if isinstance(e.payload, TERMINAL))
    payments = _by_order(log.of(PAYMENT_EVENTS))
    totals: dict[str, _Sums] = defaultdict(_Sums)
    for order_id in sorted(payments.keys() | outcomes.keys()):
        entries = payments.get(order_id, [])
        currencies = {m.currency for e in entries if isinstance(m := getattr(e.payload, "amount", None), Money)}
        if len(currencies) > 1:
            check.checked += 1
            check.breach(f"payments in several currencies: {', '.join(sorted(currencies))}", order_id=order_id)
            continue
        check.checked += bool(entries)
        sums = _order_money(check, order_id, entries, outcomes.get(order_id, []), timing)
        if currencies:
            totals[currencies.pop()].add(sums)
    for currency, sums in sorted(totals.items()):
        problems = _sum_problems(sums)
        if problems:
            check.breach(f"across orders: {'; '.join(problems)} (the orders above add up to it)", currency=currency)
    check.notes["totals"] = {
        currency: {
            "authorized": s.authorized,
            "captured": s.captured,
            "voided": s.voided,
            "refunded": s.refunded,
            "net": s.captured - s.refunded,
        }
        for currency, s in sorted(totals.items())
    }
    return check


def _sum_problems(s: _Sums) -> list[str]:
    problems = []
    if s.captured > s.authorized:
        problems.append(f"captured {s.captured} > authorized {s.authorized}")
    if s.captured + s.voided != s.settled_authorized:
        problems.append(
            f"captured {s.captured} + voided {s.voided} != {s.settled_authorized} authorized by settled payments"
        )
    if s.refunded > s.captured:
        problems.append(f"refunded {s.refunded} > captured {s.captured}")
    return problems


def _order_money(check: Check, order_id: str, entries: list[Entry], outcome: list[Entry], timing: Timing) -> _Sums:
    authorized: dict[str, tuple[int, Entry]] = {}
    captured: dict[str, int] = defaultdict(int)
    voided: set[str] = set()
    sums = _Sums()
    for entry in entries:
        match entry.payload:
            case PaymentAuthorized(payment_id=pid, amount=amount):
                known = authorized.get(pid)
                if known is not None and known[0] != amount.amount:
                    check.breach(f"payment {pid} authorized for {known[0]} and for {amount.amount}", order_id=order_id)
                authorized.setdefault(pid, (amount.amount, entry))
            case PaymentCaptured(payment_id=pid, amount=amount):
                captured[pid] += amount.amount
                sums.captured += amount.amount
            case PaymentVoided(payment_id=pid):
                voided.add(pid)
            case PaymentRefunded(amount=amount):
                sums.refunded += amount.amount
    for pid in sorted((set(captured) | voided) - set(authorized)):
        what = "captured" if pid in captured else "voided"
        check.breach(f"payment {pid} {what} but never authorized", order_id=order_id, payment_id=pid)
    for pid, (granted, entry) in sorted(authorized.items()):
        sums.authorized += granted
        took, void = captured.get(pid, 0), granted if pid in voided else 0
        if took and void:
            check.breach(f"payment {pid} captured ({took}) and voided", order_id=order_id, payment_id=pid)
        elif took > granted:
            check.breach(f"payment {pid} captured {took} > authorized {granted}", order_id=order_id, payment_id=pid)
        elif (took or void) and took + void != granted:
            check.breach(
                f"payment {pid}: captured {took} + voided {void} != authorized {granted}",
                order_id=order_id,
                payment_id=pid,
            )
        elif not (took or void) and timing.overdue(entry.envelope.occurred_at):
            check.breach(
                f"payment {pid}: {granted} authorized, neither captured nor voided past the order's deadline",
                order_id=order_id,
                payment_id=pid,
            )
        if took or void:
            sums.settled_authorized += granted
            sums.voided += void
    if sums.refunded > sums.captured:
        check.breach(f"refunded {sums.refunded} > captured {sums.captured}", order_id=order_id)
    cancelled = next((e for e in outcome if isinstance(e.payload, OrderCancelled)), None)
    confirmed = next((e for e in outcome if isinstance(e.payload, OrderConfirmed)), None)
    if cancelled is not None:
        if timing.overdue(cancelled.envelope.occurred_at) and sums.captured != sums.refunded:
            check.breach(
                f"cancelled, yet keeps {sums.captured - sums.refunded} "
                f"(captured {sums.captured}, refunded {sums.refunded})",
                order_id=order_id,
            )
    elif confirmed is not None and isinstance(confirmed.payload, OrderConfirmed):
        total = confirmed.payload.total.amount
        if timing.overdue(confirmed.envelope.occurred_at) and sums.captured != total:
            check.breach(f"confirmed for {total}, captured {sums.captured}", order_id=order_id)
    return sums


def notifications_once(log: EventLog) -> Check:
    """One NotificationSent per notification id.

    The saga names an order's notifications ``ORDER.TEMPLATE``, so one id is one (order, kind).
    """
    check = Check("notifications-once", "no notification sent twice (one NotificationSent per notification id)")
    sent: dict[str, list[Entry]] = defaultdict(list)
    for entry, p in log.messages(NOTIFICATION_EVENTS, NotificationSent):
        sent[p.notification_id].append(entry)
    for notification_id, entries in sorted(sent.items()):
        check.checked += 1
        if len(entries) > 1:
            first = entries[0].payload
            check.breach(
                f"sent {len(entries)} times: " + ", ".join(f"{e.envelope.id} ({e.record})" for e in entries),
                notification_id=notification_id,
                user_id=getattr(first, "user_id", ""),
            )
    return check


def event_log(log: EventLog) -> Check:
    """Every record of an event topic is a declared event with a version, and no version is given twice."""
    check = Check("event-log", "every event decodes, is declared on its topic and carries a seq used once per key")
    event_topics = {t.name for t in EVENT_TOPICS}
    for bad in log.unreadable:
        if bad.topic.name in event_topics:
            check.breach(bad.reason, record=bad.record)
    for topic in EVENT_TOPICS:
        uses: Counter[tuple[str | None, int]] = Counter()
        for entry in log.of(topic):
            check.checked += 1
            if entry.envelope.seq is None:
                check.breach(f"{entry.envelope.type} {entry.envelope.id} has no seq", record=entry.record)
                continue
            uses[entry.key, entry.envelope.seq] += 1
        for (key, seq), count in sorted(uses.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
            if count > 1:
                check.breach(f"seq {seq} given to {count} different events", topic=topic.name, key=key or "")
    commands = [bad for bad in log.unreadable if bad.topic.name not in event_topics]
    check.notes["unreadable commands"] = len(commands)  # refused where they came in: their DLQ says why
    check.notes["repeats absorbed"] = log.repeats
    return check


def dead_letters(records: list[DlqRecord]) -> Check:
    check = Check("dlq-reasons", "every DLQ record carries its reason (the headers of topology/dlq.py)")
    for record in records:
        check.checked += 1
        if record.letter is None:
            check.breach(record.problem or "no DLQ headers", record=record.id)
        elif not record.letter.error.strip():
            check.breach("the reason (dlq.error) is empty", record=record.id, original_topic=record.letter.topic)
    return check
