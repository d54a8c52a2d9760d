"""`shopstream verify` against the real stack: a clean history, each breach seeded and found by its id, bad input.

Each test has its own scope (topic prefix, schema, key prefix, index prefix, Mongo database).
Events go to their topics as the flows emit them (an envelope with ``seq`` per entity) and
into the stores through the sinks' own ``store`` (the code a sink process runs per batch).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import redis
from confluent_kafka import Message as KafkaMessage
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from psycopg import sql
from quixstreams.sinks.base.item import SinkItem

from ops.verify.eventlog import Entry, EventLog
from ops.verify.report import Check
from ops.verify.stores import Newest, compare, newest
from sinks.base import Record
from sinks.mongo import MongoSink
from sinks.postgres import PostgresSink
from sinks.redis import RedisSink
from sinks.search import SearchSink
from tests.support.cli import Cli
from tests.support.processes import free_port
from tests.support.scope import Scope
from topology.access import OPERATOR
from topology.dlq import DeadLetter
from topology.envelope import Envelope, encode, new_id
from topology.envelope import Producer as Who
from topology.kafka_client import client_config
from topology.messages import (
    CancelOrder,
    Message,
    Money,
    NotificationFailed,
    NotificationSent,
    OrderCancelled,
    OrderConfirmed,
    OrderLine,
    OrderPlaced,
    OrderShipped,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRefunded,
    PaymentVoided,
    PlaceOrder,
    ProductUpserted,
    SendNotification,
    StockAdjusted,
    StockCommitted,
    StockLevelChanged,
    StockReleased,
    StockReserved,
    UserRegistered,
)
from topology.stores import NOTIFICATION_DOCS, ORDERS, PAYMENTS, STOCK_CACHE
from topology.topics import (
    CATALOG_EVENTS,
    INVENTORY_EVENTS,
    NOTIFICATION_COMMANDS,
    NOTIFICATION_EVENTS,
    ORDER_COMMANDS,
    ORDER_EVENTS,
    PARTNER_COMMANDS,
    PAYMENT_EVENTS,
    STOCK_LEVELS,
    USER_EVENTS,
    Topic,
)

pytestmark = pytest.mark.stack
SINKS = (PostgresSink, RedisSink, SearchSink, MongoSink)
#: The inventory flow numbers a SKU's events and its stock levels in one sequence.
SEQUENCE_OWNER = {STOCK_LEVELS.name: INVENTORY_EVENTS.name}
NEXT = object()


def eur(amount: int) -> Money:
    return Money(amount, "EUR")


@dataclass(frozen=True)
class Sent:
    topic: Topic
    key: str
    envelope: Envelope
    value: bytes
    skip: frozenset[str]


class System:
    """A scope with the topology applied and the schema migrated; what is sent goes to its topic, then the stores."""

    def __init__(self, scope: Scope) -> None:
        scope.apply_topology()
        scope.create_topic(PARTNER_COMMANDS.for_partner("p1").name)  # a partner's topic: partner-add makes it
        scope.migrate()
        self.settings = scope.settings
        self.prefix = scope.settings.topic_prefix
        self.producer = Producer({**client_config(self.settings, OPERATOR), "enable.idempotence": True})
        self.pending: list[Sent] = []
        self.seqs: dict[tuple[str, str], int] = {}

    def event(
        self, topic: Topic, key: str, message: Message, at: datetime, seq: object = NEXT, skip: Iterable[str] = ()
    ) -> Envelope:
        """An event as its flow emits it: ``seq`` the next version of the entity ``key`` (or the one given)."""
        owner = (SEQUENCE_OWNER.get(topic.name, topic.name), key)
        if seq is NEXT:
            seq = self.seqs.get(owner, 0) + 1
        if isinstance(seq, int):
            self.seqs[owner] = max(seq, self.seqs.get(owner, 0))
        envelope = Envelope(
            id=new_id(),
            type=message.TYPE,
            version=message.VERSION,
            occurred_at=at,
            correlation_id=key,
            seq=seq if isinstance(seq, int) else None,
            producer=Who("service", topic.name.split(".")[1]),
            payload=message,
        )
        self.send(topic, key, envelope, skip)
        return envelope

    def command(self, topic: Topic, key: str, message: Message, at: datetime) -> Envelope:
        envelope = Envelope(
            id=new_id(),
            type=message.TYPE,
            version=message.VERSION,
            occurred_at=at,
            correlation_id=key,
            producer=Who("user", "u-1"),
            payload=message,
        )
        self.send(topic, key, envelope)
        return envelope

    def send(self, topic: Topic, key: str, envelope: Envelope, skip: Iterable[str] = ()) -> None:
        value = encode(envelope)
        self.producer.produce(topic.name_for(self.prefix), value, key=key.encode())
        self.pending.append(Sent(topic, key, envelope, value, frozenset(skip)))

    def raw(self, topic: str, value: bytes, headers: list[tuple[str, bytes]] | None = None) -> str:
        """A record as given, on a topic by its broker name; its id ``TOPIC/PARTITION/OFFSET``."""
        delivered: list[KafkaMessage] = []
        self.producer.produce(
            topic, value, key=b"k", headers=headers or [], on_delivery=lambda _, m: delivered.append(m)
        )
        assert self.producer.flush(15) == 0
        return f"{delivered[0].topic()}/{delivered[0].partition()}/{delivered[0].offset()}"

    def settle(self) -> None:
        """Every record delivered, and every event written by each sink that reads its topic (unless skipped)."""
        assert self.producer.flush(15) == 0
        for kind in SINKS:
            sink = kind(self.settings)
            batch = [
                Record(s.envelope, SinkItem(s.value, s.key.encode(), 0, [], n))
                for n, s in enumerate(self.pending)
                if s.topic in sink.process.consumes and sink.name not in s.skip
            ]
            sink.connect()
            try:
                sink.store(batch)
            finally:
                sink.close()
        self.pending.clear()

    def verify(self, *args: str) -> tuple[int, dict[str, Any]]:
        result = Cli(self.settings.to_env())("verify", "--json", *args)
        return result.exit_code, json.loads(result.stdout)


class Shelf:
    """One SKU's stock as the inventory flow moves it: each event followed by the SKU's new level."""

    def __init__(self, system: System, sku: str, at: datetime, levels: bool = True) -> None:
        self.system, self.sku, self.at, self.levels = system, sku, at, levels
        self.total = self.reserved = 0
        self.held: dict[str, int] = {}

    def _emit(self, message: Message) -> None:
        self.system.event(INVENTORY_EVENTS, self.sku, message, self.at)
        if self.levels:
            level = StockLevelChanged(
                sku=self.sku, total=self.total, reserved=self.reserved, available=self.total - self.reserved
            )
            self.system.event(STOCK_LEVELS, self.sku, level, self.at)

    def adjust(self, delta: int) -> None:
        self.total += delta
        self._emit(StockAdjusted(sku=self.sku, delta=delta, reason="restock"))

    def reserve(self, order_id: str, quantity: int) -> None:
        self.held[order_id] = quantity
        self.reserved += quantity
        self._emit(StockReserved(sku=self.sku, order_id=order_id, quantity=quantity))

    def release(self, order_id: str) -> None:
        quantity = self.held.pop(order_id)
        self.reserved -= quantity
        self._emit(StockReleased(sku=self.sku, order_id=order_id, quantity=quantity))

    def commit(self, order_id: str) -> None:
        quantity = self.held.pop(order_id)
        self.reserved -= quantity
        self.total -= quantity
        self._emit(StockCommitted(sku=self.sku, order_id=order_id, quantity=quantity))


def place(s: System, order_id: str, quantity: int, at: datetime, shelf: Shelf | None = None) -> None:
    """The command and the saga's first event (and the reservation, given a shelf)."""
    lines = [OrderLine("sku-1", quantity, eur(500))]
    s.command(
        ORDER_COMMANDS, order_id, PlaceOrder(order_id=order_id, customer_id="u-1", lines=lines, payment_token="t"), at
    )
    placed = OrderPlaced(order_id=order_id, customer_id="u-1", lines=lines, total=eur(500 * quantity))
    s.event(ORDER_EVENTS, order_id, placed, at)
    if shelf is not None:
        shelf.reserve(order_id, quantity)


def notify(s: System, order_id: str, template: str, at: datetime) -> None:
    notification_id = f"{order_id}.{template}"
    s.command(
        NOTIFICATION_COMMANDS,
        "u-1",
        SendNotification(notification_id=notification_id, user_id="u-1", channel="email", template=template, body="."),
        at,
    )
    s.event(
        NOTIFICATION_EVENTS,
        "u-1",
        NotificationSent(notification_id=notification_id, user_id="u-1", channel="email"),
        at,
    )


def clean_history(s: System, now: datetime) -> None:
    """Orders confirmed; declined; confirmed, then cancelled; cancelled while authorizing; and one in flight."""
    at = now - timedelta(minutes=10)
    product = ProductUpserted(
        sku="sku-1", title="mug", description="", brand="acme", category="kitchen", tags=[], price=eur(500)
    )
    s.event(CATALOG_EVENTS, "sku-1", product, at)
    s.event(USER_EVENTS, "u-1", UserRegistered(user_id="u-1", email="u-1@example.com", name="U"), at)
    shelf = Shelf(s, "sku-1", at)
    shelf.adjust(10)

    place(s, "o-1", 2, at, shelf)
    s.event(PAYMENT_EVENTS, "o-1", PaymentAuthorized(order_id="o-1", payment_id="pay-1", amount=eur(1000)), at)
    confirmed = s.event(ORDER_EVENTS, "o-1", OrderConfirmed(order_id="o-1", customer_id="u-1", total=eur(1000)), at)
    shelf.commit("o-1")
    s.event(PAYMENT_EVENTS, "o-1", PaymentCaptured(order_id="o-1", payment_id="pay-1", amount=eur(1000)), at)
    notify(s, "o-1", "order-confirmed", at)
    s.send(ORDER_EVENTS, "o-1", confirmed)  # a replay re-emits the same envelope: absorbed, not a second state

    place(s, "o-2", 1, at, shelf)
    s.event(PAYMENT_EVENTS, "o-2", PaymentDeclined(order_id="o-2", reason="card_declined"), at)
    s.event(ORDER_EVENTS, "o-2", OrderCancelled(order_id="o-2", customer_id="u-1", reason="payment declined"), at)
    shelf.release("o-2")
    notify(s, "o-2", "order-cancelled", at)

    place(s, "o-3", 1, at, shelf)
    s.event(PAYMENT_EVENTS, "o-3", PaymentAuthorized(order_id="o-3", payment_id="pay-3", amount=eur(500)), at)
    s.event(ORDER_EVENTS, "o-3", OrderConfirmed(order_id="o-3", customer_id="u-1", total=eur(500)), at)
    shelf.commit("o-3")
    s.event(PAYMENT_EVENTS, "o-3", PaymentCaptured(order_id="o-3", payment_id="pay-3", amount=eur(500)), at)
    s.command(ORDER_COMMANDS, "o-3", CancelOrder(order_id="o-3"), at)
    s.event(ORDER_EVENTS, "o-3", OrderCancelled(order_id="o-3", customer_id="u-1", reason="customer request"), at)
    shelf.adjust(1)  # the committed unit put back
    s.event(PAYMENT_EVENTS, "o-3", PaymentRefunded(order_id="o-3", payment_id="pay-3", amount=eur(500)), at)

    place(s, "o-4", 1, at, shelf)
    s.event(PAYMENT_EVENTS, "o-4", PaymentAuthorized(order_id="o-4", payment_id="pay-4", amount=eur(500)), at)
    s.command(ORDER_COMMANDS, "o-4", CancelOrder(order_id="o-4"), at)
    s.event(ORDER_EVENTS, "o-4", OrderCancelled(order_id="o-4", customer_id="u-1", reason="customer request"), at)
    shelf.release("o-4")
    s.event(PAYMENT_EVENTS, "o-4", PaymentVoided(order_id="o-4", payment_id="pay-4"), at)

    shelf.at = now
    place(s, "o-5", 1, now, shelf)  # placed just now: within its deadline

    partner = PARTNER_COMMANDS.for_partner("p1").name_for(s.prefix)
    refused = s.raw(partner, b'{"not": "an envelope"}')  # refused where it came in; its DLQ record says why
    _, partition, offset = refused.rsplit("/", 2)
    letter = DeadLetter(partner, int(partition), int(offset), "not a valid envelope", "flow.orders", 1, at)
    s.raw(PARTNER_COMMANDS.dead_letter.name_for(s.prefix), b'{"not": "an envelope"}', letter.headers())  # type: ignore[union-attr]
    s.settle()


@pytest.fixture
def system(ns: Scope) -> System:
    s = System(ns)
    clean_history(s, datetime.now(UTC))
    return s


def found(report: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    return [(b["check"], b["ids"]) for c in report["checks"] for b in c["breaches"]]


def checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"]}


def with_details(report: dict[str, Any]) -> list[tuple[str, dict[str, str], str]]:
    return [(b["check"], b["ids"], b["detail"]) for c in report["checks"] for b in c["breaches"]]


def test_a_clean_history_proves_every_invariant(system: System) -> None:
    code, report = system.verify()
    assert (code, found(report)) == (0, []), json.dumps(report, indent=1)
    by = checks(report)
    assert report["ok"] is True
    assert by["orders-settled"]["checked"] == 5 and by["orders-settled"]["notes"]["in flight"] == 1
    assert by["one-terminal-state"]["notes"]["cancelled after confirmation"] == 1
    assert by["stock"]["checked"] == 1
    assert by["money"]["notes"]["totals"] == {
        "EUR": {"authorized": 2000, "captured": 1500, "voided": 500, "refunded": 500, "net": 1000}
    }
    assert by["notifications-once"]["checked"] == 2
    assert by["event-log"]["notes"] == {"unreadable commands": 1, "repeats absorbed": 1}
    assert by["dlq-reasons"]["checked"] == 1
    assert [by[f"store-{s}"]["checked"] for s in ("postgres", "redis", "search", "mongo")] == [13, 7, 6, 2]

    text = Cli({k: v for k, v in system.settings.to_env().items() if k != "SHOP_TOPIC_PREFIX"})(
        "verify", "--prefix", system.prefix
    )
    assert text.exit_code == 0, text.stdout + text.stderr
    assert "clean: every invariant holds" in text.stdout
    assert "orders-settled" in text.stdout and "in flight 1" in text.stdout


def test_the_read_replica_holds_the_same(system: System) -> None:
    code, report = system.verify("--replica")
    for _ in range(20):  # streaming replication may trail the primary by a moment
        if code == 0:
            break
        code, report = system.verify("--replica")
    assert (code, found(report)) == (0, [])
    assert checks(report)["store-postgres-replica"]["checked"] == 13


def test_an_order_past_its_deadline_without_a_terminal_state(system: System) -> None:
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    place(system, "o-9", 1, an_hour_ago)
    system.settle()
    code, report = system.verify()
    assert code == 1
    [(check, ids)] = found(report)
    assert check == "orders-settled" and ids["order_id"] == "o-9"


def test_an_order_confirmed_and_cancelled(system: System) -> None:
    now = datetime.now(UTC)
    place(system, "o-7", 1, now)
    system.event(ORDER_EVENTS, "o-7", OrderConfirmed(order_id="o-7", customer_id="u-1", total=eur(500)), now)
    system.event(ORDER_EVENTS, "o-7", OrderCancelled(order_id="o-7", customer_id="u-1", reason="?"), now)
    system.settle()
    code, report = system.verify()
    assert (code, found(report)) == (1, [("one-terminal-state", {"order_id": "o-7"})])

    text = Cli(system.settings.to_env())("verify")
    assert text.exit_code == 1
    assert "one-terminal-state  order_id=o-7" in text.stdout
    assert "no CancelOrder asked for it" in text.stdout
    assert "1 breach:" in text.stdout


def test_events_out_of_the_order_lifecycle(system: System) -> None:
    now = datetime.now(UTC)
    place(system, "o-6", 1, now)
    system.event(ORDER_EVENTS, "o-6", OrderShipped(order_id="o-6", carrier="dhl", tracking_code="T"), now)
    place(system, "o-16", 1, now)
    system.event(ORDER_EVENTS, "o-16", OrderConfirmed(order_id="o-16", customer_id="u-1", total=eur(500)), now, seq=3)
    system.settle()
    code, report = system.verify()
    assert code == 1
    breaches = {ids["order_id"]: check for check, ids in found(report)}
    assert breaches == {"o-6": "lifecycle", "o-16": "lifecycle"}
    details = {b["ids"]["order_id"]: b["detail"] for b in checks(report)["lifecycle"]["breaches"]}
    assert details["o-6"] == "OrderShipped (seq 2) after OrderPlaced (seq 1)"
    assert "versions 1 to 3" in details["o-16"]


def test_an_oversold_sku(system: System) -> None:
    now = datetime.now(UTC)
    shelf = Shelf(system, "sku-9", now, levels=False)
    shelf.adjust(1)
    shelf.reserve("o-90", 1)
    shelf.reserve("o-91", 1)
    shelf.commit("o-90")
    shelf.commit("o-91")
    system.settle()
    code, report = system.verify()
    assert (code, found(report)) == (1, [("stock", {"sku": "sku-9"})])
    detail = checks(report)["stock"]["breaches"][0]["detail"]
    assert "sold 2 of 1 stocked" in detail and "order o-91" in detail
    assert "2 reserved with 1 on hand" in detail


def test_money_that_does_not_add_up(system: System) -> None:
    at = datetime.now(UTC) - timedelta(minutes=10)
    place(system, "o-8", 2, at)
    system.event(PAYMENT_EVENTS, "o-8", PaymentAuthorized(order_id="o-8", payment_id="pay-8", amount=eur(1000)), at)
    system.event(ORDER_EVENTS, "o-8", OrderConfirmed(order_id="o-8", customer_id="u-1", total=eur(1000)), at)
    system.event(PAYMENT_EVENTS, "o-8", PaymentCaptured(order_id="o-8", payment_id="pay-8", amount=eur(1200)), at)
    place(system, "o-12", 1, at)
    system.event(PAYMENT_EVENTS, "o-12", PaymentAuthorized(order_id="o-12", payment_id="pay-12", amount=eur(500)), at)
    system.event(ORDER_EVENTS, "o-12", OrderConfirmed(order_id="o-12", customer_id="u-1", total=eur(500)), at)
    system.event(PAYMENT_EVENTS, "o-12", PaymentCaptured(order_id="o-12", payment_id="pay-12", amount=eur(500)), at)
    system.event(PAYMENT_EVENTS, "o-12", PaymentRefunded(order_id="o-12", payment_id="pay-12", amount=eur(700)), at)
    system.settle()
    code, report = system.verify()
    assert code == 1
    breaches = [(b["ids"], b["detail"]) for b in checks(report)["money"]["breaches"]]
    assert [check for check, _ in found(report)] == ["money"] * 4
    assert ({"order_id": "o-8", "payment_id": "pay-8"}, "payment pay-8 captured 1200 > authorized 1000") in breaches
    assert ({"order_id": "o-8"}, "confirmed for 1000, captured 1200") in breaches
    assert ({"order_id": "o-12"}, "refunded 700 > captured 500") in breaches
    [(_, totals)] = [(ids, d) for ids, d in breaches if ids == {"currency": "EUR"}]
    assert "captured 3200 + voided 500 != 3500 authorized by settled payments" in totals


@pytest.mark.parametrize("store", ["postgres", "redis", "search", "mongo"])
def test_a_store_holding_an_older_version(system: System, store: str) -> None:
    now = datetime.now(UTC)
    if store == "mongo":
        note = "o-1.order-shipped"
        failed = NotificationFailed(notification_id=note, user_id="u-1", channel="sms", reason="no phone")
        system.event(NOTIFICATION_EVENTS, "u-1", failed, now)
        sent = NotificationSent(notification_id=note, user_id="u-1", channel="email")
        system.event(NOTIFICATION_EVENTS, "u-1", sent, now, skip={store})
        entity, newest = {"collection": NOTIFICATION_DOCS.name, "notification_id": note}, "version 4 (NotificationSent)"
    else:
        shipped = OrderShipped(order_id="o-1", carrier="dhl", tracking_code="T1")
        system.event(ORDER_EVENTS, "o-1", shipped, now, skip={store})  # that store's sink never got it
        entity, newest = {"order_id": "o-1"}, "version 3 (OrderShipped)"
    system.settle()
    code, report = system.verify()
    assert code == 1
    [(check, ids)] = found(report)
    assert check == f"store-{store}"
    assert entity.items() <= ids.items()
    detail = checks(report)[check]["breaches"][0]["detail"]
    assert detail.endswith(f"the log's newest is {newest}"), detail


def test_a_row_missing_and_one_newer_than_the_log(system: System) -> None:
    table = sql.SQL("{}.{}").format(sql.Identifier(system.settings.pg_schema), sql.Identifier(ORDERS.name))
    with psycopg.connect(system.settings.pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DELETE FROM {} WHERE order_id = 'o-2'").format(table))
        conn.execute(sql.SQL("UPDATE {} SET version = 9 WHERE order_id = 'o-3'").format(table))
    client = redis.Redis.from_url(system.settings.redis_url)
    client.delete(STOCK_CACHE.key.format(system.settings.redis_prefix, sku="sku-1"))  # kept for good: a breach
    client.close()
    code, report = system.verify()
    assert code == 1
    details = {(check, ids.get("order_id") or ids.get("sku")): b for check, ids, b in with_details(report)}
    assert details.keys() == {("store-postgres", "o-2"), ("store-postgres", "o-3"), ("store-redis", "sku-1")}
    assert details["store-postgres", "o-2"].startswith("missing; the log's newest is version 2")
    assert details["store-postgres", "o-3"] == "holds version 9, newer than the log's newest (3)"


def test_a_store_newer_than_the_log_is_a_breach_unless_the_topic_grew_since_it_was_read() -> None:
    expected = {("o-1",): Newest(2, "OrderConfirmed", datetime.now(UTC))}
    for grew, breaches, notes in ((False, 1, {}), (True, 0, {"newer than the log read": 1})):
        check = Check("store-postgres", "")
        compare(check, {"table": ORDERS.name}, ORDERS, expected, {("o-1",): 3}, lambda _topic, g=grew: g)
        assert (len(check.breaches), check.notes) == (breaches, notes)


def test_a_repeated_answer_counts_with_the_highest_seq_its_copies_carry() -> None:
    """A flow answering a repeated command again (same derived id) stamps the copy its next seq; sinks apply it."""
    declined = PaymentDeclined(order_id="o-1", reason="card_declined")
    log = EventLog()
    for n, seq in enumerate((1, 3)):
        envelope = Envelope(
            id="e-declined",
            type=declined.TYPE,
            version=declined.VERSION,
            occurred_at=datetime.now(UTC),
            correlation_id="c-1",
            seq=seq,
            producer=Who("service", "payments"),
            payload=declined,
        )
        log.add(Entry(PAYMENT_EVENTS, f"shop.payments.events/0/{n}", "o-1", envelope))
    assert log.repeats == 1
    assert newest(log, PAYMENTS)[("o-1",)].version == 3
    check = Check("store-postgres", "")
    compare(check, {"table": PAYMENTS.name}, PAYMENTS, newest(log, PAYMENTS), {("o-1",): 3}, lambda _topic: False)
    assert check.breaches == []


def test_a_notification_sent_twice(system: System) -> None:
    again = NotificationSent(notification_id="o-1.order-confirmed", user_id="u-1", channel="email")
    system.event(NOTIFICATION_EVENTS, "u-1", again, datetime.now(UTC))
    system.settle()
    code, report = system.verify()
    assert (code, found(report)) == (
        1,
        [("notifications-once", {"notification_id": "o-1.order-confirmed", "user_id": "u-1"})],
    )


def test_dead_letters_without_a_reason(system: System) -> None:
    dlq = ORDER_COMMANDS.name_for(system.prefix) + ".dlq"
    bare = system.raw(dlq, b"{}")
    silent = DeadLetter(ORDER_COMMANDS.name_for(system.prefix), 0, 7, "", "flow.orders", 1, datetime.now(UTC))
    empty = system.raw(dlq, b"{}", silent.headers())
    code, report = system.verify()
    assert code == 1
    assert [(check, ids["record"]) for check, ids in found(report)] == [("dlq-reasons", bare), ("dlq-reasons", empty)]
    details = [b["detail"] for b in checks(report)["dlq-reasons"]["breaches"]]
    assert "missing headers" in details[0] and details[1] == "the reason (dlq.error) is empty"


def test_events_without_a_version_or_that_do_not_decode(system: System) -> None:
    shipped = OrderShipped(order_id="o-1", carrier="dhl", tracking_code="T1")
    unversioned = system.event(ORDER_EVENTS, "o-1", shipped, datetime.now(UTC), seq=None)
    garbage = system.raw(ORDER_EVENTS.name_for(system.prefix), b"\x00not json")
    system.settle()
    code, report = system.verify()
    assert code == 1
    assert [check for check, _ in found(report)] == ["event-log", "event-log"]
    details = {b["ids"]["record"]: b["detail"] for b in checks(report)["event-log"]["breaches"]}
    assert "not a valid envelope" in details[garbage]
    assert f"OrderShipped {unversioned.id} has no seq" in details.values()


def test_an_empty_system_and_a_half_applied_topology(ns: Scope) -> None:
    cli = Cli(ns.settings.to_env())
    empty = cli("verify")
    assert empty.exit_code == 2
    assert f"no Shopstream topic under prefix {ns.settings.topic_prefix!r}" in empty.stderr
    assert "shopstream topology apply" in empty.stderr

    admin = AdminClient({**client_config(ns.settings, OPERATOR)})
    name = ORDER_EVENTS.name_for(ns.settings.topic_prefix)
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=15)
    deadline = time.monotonic() + 15
    while name not in admin.list_topics(timeout=5).topics:  # the broker's metadata shows a new topic a moment later
        assert time.monotonic() < deadline
        time.sleep(0.1)
    half = cli("verify")
    assert half.exit_code == 2
    assert "the topology is half applied" in half.stderr and "Traceback" not in half.output


def test_a_missing_or_half_migrated_schema(ns: Scope) -> None:
    ns.apply_topology()
    cli = Cli(ns.settings.to_env())
    missing = cli("verify")
    assert missing.exit_code == 2
    assert f"schema {ns.schema!r} does not exist" in missing.stderr
    assert "shopstream db migrate" in missing.stderr

    with psycopg.connect(ns.settings.pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(ns.schema)))
        conn.execute(
            sql.SQL("CREATE TABLE {}.{} (order_id text PRIMARY KEY)").format(
                sql.Identifier(ns.schema), sql.Identifier(ORDERS.name)
            )
        )
    half = cli("verify")
    assert half.exit_code == 2
    assert f"schema {ns.schema!r} is half migrated: missing orders.version, payments, stock" in half.stderr
    assert "Traceback" not in half.output


def test_a_broker_that_cannot_be_reached(ns: Scope) -> None:
    down = Cli({**ns.settings.to_env(), "SHOP_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"})("verify")
    assert down.exit_code == 2
    assert "did not answer" in down.stderr and "shopstream stack up" in down.stderr
    assert "Traceback" not in down.output


@pytest.mark.parametrize(
    ("store", "variable", "url"),
    [
        ("postgres", "SHOP_PG_PRIMARY_URL", "postgresql://shopstream:hunter2@127.0.0.1:{port}/shopstream"),
        ("redis", "SHOP_REDIS_URL", "redis://:hunter2@127.0.0.1:{port}/0"),
        ("search", "SHOP_SEARCH_URL", "http://127.0.0.1:{port}"),
        ("mongo", "SHOP_MONGO_URL", "mongodb://127.0.0.1:{port}/?directConnection=true"),
    ],
)
def test_a_store_that_cannot_be_reached(ns: Scope, store: str, variable: str, url: str) -> None:
    ns.apply_topology()
    ns.migrate()
    result = Cli({**ns.settings.to_env(), variable: url.format(port=free_port())})("verify")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {store}: cannot read")
    assert f"shopstream stack up {store}" in result.stderr and "Traceback" not in result.output
    assert "hunter2" not in result.output, "a password in a store's URL is never printed"
