"""Partners on the real broker: each writes to its own topic, acts as the partner that topic names, on its own SKUs.

The flows run as processes (``shopstream flow NAME``) under the test's topic prefix; partners
are registered with ``shopstream partner-add``, one of them while the flows run. Every refused
command is read back from a DLQ with its reason, and the events and stock levels read back
after show that none of them changed anything; orders are priced by the catalog.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.support.cli import Cli
from tests.support.flows import LiveFlows
from tests.support.scope import Scope
from topology.access import OPERATOR
from topology.dlq import DeadLetter
from topology.envelope import Envelope, Producer, decode, encode, envelop
from topology.kafka_client import client_config
from topology.messages import (
    AdjustStock,
    Message,
    Money,
    OrderItem,
    OrderLine,
    PlaceOrder,
    PlaceOrderV2,
    UpsertProduct,
)
from topology.settings import Settings
from topology.topics import (
    CATALOG_COMMANDS,
    CATALOG_EVENTS,
    INVENTORY_COMMANDS,
    INVENTORY_EVENTS,
    ORDER_COMMANDS,
    ORDER_EVENTS,
    PARTNER_COMMANDS,
    STOCK_LEVELS,
)

pytestmark = pytest.mark.stack
GROUPS = (("orders", "inventory", "payments"), ("catalog",))  # the saga's group as the Procfile runs it
Record = tuple[str, bytes | None, list[tuple[str, bytes]]]  # topic, value, headers


def read_all(settings: Settings, topics: list[str]) -> list[Record]:
    """Every record of ``topics`` up to their end offsets now."""
    consumer = Consumer({**client_config(settings, OPERATOR), "group.id": f"reader-{uuid.uuid4().hex}"})
    try:
        meta = consumer.list_topics(timeout=10)
        parts = [TopicPartition(t, p, 0) for t in topics if t in meta.topics for p in meta.topics[t].partitions]
        ends = {(tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts}
        wanted = {k for k, end in ends.items() if end > 0}
        consumer.assign([tp for tp in parts if (tp.topic, tp.partition) in wanted])
        found: list[Record] = []
        deadline = time.monotonic() + 30
        while wanted and time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=0.5):
                if msg.error() is not None:
                    continue
                found.append((msg.topic(), msg.value(), msg.headers() or []))
                if msg.offset() + 1 >= ends[(msg.topic(), msg.partition())]:
                    wanted.discard((msg.topic(), msg.partition()))
        return found
    finally:
        consumer.close()


def events(settings: Settings, *topics: str) -> list[Envelope]:
    return [decode(value) for topic, value, _ in read_all(settings, list(topics)) if value is not None]


def dead_letters(settings: Settings, *topics: str) -> dict[str, str]:
    """The reason of each dead letter of ``topics``' DLQs, by the id of the envelope it carries."""
    found: dict[str, str] = {}
    for _, value, headers in read_all(settings, list(topics)):
        letter = DeadLetter.from_headers(headers)
        found[str(msgspec.json.decode(value or b"{}").get("id"))] = letter.error
    return found


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(1)


class Partner:
    """A partner producing to a topic (its own, unless a test says otherwise), as the envelope's producer."""

    def __init__(self, live: LiveFlows, partner_id: str) -> None:
        self.live, self.id = live, partner_id
        self.topic = PARTNER_COMMANDS.for_partner(partner_id).name_for(live.settings.topic_prefix)

    def send(self, key: str, message: Message, producer: Producer | None = None) -> str:
        envelope = envelop(message, producer=producer or Producer("partner", self.id), occurred_at=datetime.now(UTC))
        self.live.send(self.topic, key, envelope)
        self.live.flush()
        return envelope.id

    def send_raw(self, key: str, document: dict[str, object]) -> str:
        assert self.live.producer is not None
        self.live.producer.produce(self.topic, msgspec.json.encode(document), key=key.encode())
        self.live.flush()
        return str(document["id"])

    def upsert(self, sku: str, amount: int) -> str:
        return self.send(sku, UpsertProduct(sku=sku, title=sku, price=Money(amount, "EUR")))

    def order(self, order_id: str, lines: list[tuple[str, int]], customer: str | None = None) -> str:
        items = [OrderItem(sku, qty) for sku, qty in lines]
        command = PlaceOrderV2(
            order_id=order_id, customer_id=customer or f"partner:{self.id}", lines=items, payment_token="tok_visa"
        )
        return self.send(order_id, command)


@pytest.fixture
def live(ns: Scope, tmp_path: Path) -> Iterator[LiveFlows]:
    ns.apply_topology()
    ns.migrate()
    flows = LiveFlows(ns.settings, tmp_path)
    yield flows
    flows.stop()


def partner_add(ns: Scope, partner_id: str) -> dict[str, object]:
    env = {"SHOP_TOPIC_PREFIX": ns.settings.topic_prefix, "SHOP_PG_SCHEMA": ns.schema}
    result = Cli(env)("partner-add", partner_id, "--scope", "catalog:write")
    assert result.exit_code == 0, result.output
    answer: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def products(settings: Settings) -> dict[str, list[tuple[int, str | None]]]:
    found: dict[str, list[tuple[int, str | None]]] = {}
    for e in events(settings, CATALOG_EVENTS.name_for(settings.topic_prefix)):
        found.setdefault(e.payload.sku, []).append((e.payload.price.amount, e.payload.owner_partner_id))  # type: ignore[attr-defined]
    return found


def test_partners_act_only_as_themselves_on_their_own_skus_and_orders_are_priced_by_the_catalog(
    ns: Scope, live: LiveFlows
) -> None:
    prefix = ns.settings.topic_prefix
    answer = partner_add(ns, "acme")
    assert answer["topic"] == f"{prefix}shop.partner.acme.commands" and answer["client_id"]
    partner_add(ns, "bob")
    meta = Consumer({**client_config(ns.settings, OPERATOR), "group.id": "meta"}).list_topics(timeout=10)
    assert len(meta.topics[f"{prefix}shop.partner.acme.commands"].partitions) == PARTNER_COMMANDS.partitions
    assert f"{prefix}shop.partner.commands.dlq" in meta.topics
    for group in GROUPS:
        live.start(*group)
    acme, bob = Partner(live, "acme"), Partner(live, "bob")
    acme.upsert("acme-mug", 1250)
    bob.upsert("bob-lamp", 3000)
    wait_for("both products in the catalog", lambda: {"acme-mug", "bob-lamp"} <= products(ns.settings).keys())
    time.sleep(2)  # the inventory flow reads the catalog's events too
    acme.send("acme-mug", AdjustStock(sku="acme-mug", delta=5, reason="delivery"))
    bob.send("bob-lamp", AdjustStock(sku="bob-lamp", delta=3, reason="delivery"))

    refused = {
        acme.send("bob-lamp", AdjustStock(sku="bob-lamp", delta=50)): "SKU bob-lamp belongs to partner bob",
        acme.upsert("bob-lamp", 1): "SKU bob-lamp belongs to partner bob: partner acme may not change it",
        acme.send("bob-lamp", AdjustStock(sku="bob-lamp", delta=50), Producer("partner", "bob")): (
            "the envelope's producer (partner bob) is not partner acme"
        ),
        acme.order("f-1", [("acme-mug", 1)], customer="u-ann"): "orders only as its buyer account partner:acme",
        acme.send(
            "f-2",
            PlaceOrder(
                order_id="f-2",
                customer_id="partner:acme",
                lines=[OrderLine("acme-mug", 1, Money(1, "EUR"))],
                payment_token="tok_visa",
            ),
        ): "PlaceOrder v1 carries unit prices",
    }
    priced = msgspec.json.decode(
        encode(
            envelop(
                PlaceOrderV2(
                    order_id="f-3", customer_id="partner:acme", lines=[OrderItem("acme-mug", 1)], payment_token="t"
                ),
                producer=Producer("partner", "acme"),
                occurred_at=datetime.now(UTC),
            )
        )
    )
    priced["payload"]["lines"][0]["unit_price"] = {"amount": 1, "currency": "EUR"}
    refused[acme.send_raw("f-3", priced)] = "unknown fields: $.payload.lines[0].unit_price"

    order_id = f"partner:acme:{live.run_id}"
    acme.order(order_id, [("acme-mug", 2)])
    customer_order = f"{live.run_id}-ann"
    command = PlaceOrderV2(
        order_id=customer_order, customer_id="u-ann", lines=[OrderItem("bob-lamp", 1)], payment_token="tok_visa"
    )
    live.send(
        ORDER_COMMANDS.name_for(prefix),
        customer_order,
        envelop(command, producer=Producer("user", "u-ann"), occurred_at=datetime.now(UTC)),
    )
    live.flush()

    def settled() -> dict[str, Envelope]:
        return {
            e.payload.order_id: e  # type: ignore[attr-defined]
            for e in events(ns.settings, ORDER_EVENTS.name_for(prefix))
            if e.type in ("OrderConfirmed", "OrderCancelled")
        }

    wait_for("both orders settled", lambda: {order_id, customer_order} <= settled().keys())
    done = settled()
    assert done[order_id].type == "OrderConfirmed" and done[order_id].payload.total == Money(2500, "EUR")  # type: ignore[attr-defined]
    assert done[customer_order].payload.total == Money(3000, "EUR"), "the catalog's price, not the sender's"  # type: ignore[attr-defined]
    placed = {
        e.payload.order_id: e.payload  # type: ignore[attr-defined]
        for e in events(ns.settings, ORDER_EVENTS.name_for(prefix))
        if e.type == "OrderPlaced"
    }
    assert placed[order_id].lines == [OrderLine("acme-mug", 2, Money(1250, "EUR"))]  # type: ignore[attr-defined]
    assert placed.keys() == {order_id, customer_order}, "no refused order was placed"

    dlqs = [t.dead_letter.name_for(prefix) for t in (PARTNER_COMMANDS, INVENTORY_COMMANDS, CATALOG_COMMANDS)]  # type: ignore[union-attr]
    wait_for("every refusal dead-lettered", lambda: len(dead_letters(ns.settings, *dlqs)) >= len(refused))
    letters = dead_letters(ns.settings, *dlqs)
    for message_id, reason in refused.items():
        found = [text for key, text in letters.items() if key == message_id or reason in text]
        assert found and reason in found[0], (reason, letters)

    levels = {
        e.payload.sku: e.payload  # type: ignore[attr-defined]
        for e in events(ns.settings, STOCK_LEVELS.name_for(prefix))
    }
    assert levels["bob-lamp"].total == 2, "acme's adjustments of bob's SKU changed nothing (3 stocked, 1 sold)"
    assert levels["acme-mug"].total == 3
    assert products(ns.settings)["bob-lamp"] == [(3000, "bob")], "acme's upsert of bob's SKU changed nothing"
    adjusted = [
        e.payload.delta  # type: ignore[attr-defined]
        for e in events(ns.settings, INVENTORY_EVENTS.name_for(prefix))
        if e.type == "StockAdjusted" and e.payload.sku == "bob-lamp"  # type: ignore[attr-defined]
    ]
    assert adjusted == [3]

    # A partner registered while the flows run is read without restarting them.
    partner_add(ns, "carl")
    carl = Partner(live, "carl")
    carl.upsert("carl-cup", 700)
    wait_for("carl's product in the catalog", lambda: "carl-cup" in products(ns.settings))
    assert products(ns.settings)["carl-cup"] == [(700, "carl")]
    assert all(live.alive().values()), "a flow died"
