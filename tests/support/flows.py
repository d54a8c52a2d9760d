"""The three flows as real processes (``shopstream flow NAME``) on the real broker, under a private topic prefix.

``LiveFlows`` starts, kills and feeds them; ``observe`` reads back what they published.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec
from confluent_kafka import Consumer, Producer

from flows.group import group_id
from tests.support.processes import BIN, kill, spawn, stop_all
from topology.access import OPERATOR
from topology.envelope import Envelope, decode, encode, envelop
from topology.envelope import Producer as MessageProducer
from topology.kafka_client import client_config
from topology.messages import AdjustStock, Money, OrderItem, PlaceOrderV2, ProductUpserted
from topology.settings import Settings
from topology.topics import (
    CATALOG_EVENTS,
    INVENTORY_COMMANDS,
    INVENTORY_EVENTS,
    ORDER_COMMANDS,
    ORDER_EVENTS,
    STOCK_LEVELS,
)

FLOWS = ("orders", "inventory", "payments")


def catalog_product(sku: str, price: Money, seq: int, owner: str | None = None) -> Envelope:
    """The catalog's ``ProductUpserted`` for ``sku`` at version ``seq``, as the catalog flow publishes it."""
    product = ProductUpserted(
        sku=sku, title=sku, description="", brand="", category="", tags=[], price=price, owner_partner_id=owner
    )
    envelope = envelop(product, producer=MessageProducer("service", "catalog"), occurred_at=datetime.now(UTC))
    return msgspec.structs.replace(envelope, seq=seq)


@dataclass
class LiveFlows:
    settings: Settings
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    producer: Producer | None = None
    env: dict[str, str] = field(default_factory=dict)  # more SHOP_* settings for the flow processes
    prices: dict[str, int] = field(default_factory=dict)  # the catalog version of each SKU priced

    def start(self, *names: str) -> str:
        """Run the named flows, as one group process when several are named; the process's name."""
        env = {**os.environ, "SHOP_TOPIC_PREFIX": self.settings.topic_prefix, "SHOP_FLOW_EPOCH_MS": "100", **self.env}
        name = group_id(names)
        self.processes[name] = spawn([str(BIN / "shopstream"), "flow", *names], env, self.logs / f"{name}.log")
        return name

    def kill(self, name: str) -> None:
        kill(self.processes[name])

    def stop(self) -> None:
        stop_all(self.processes.values())

    def alive(self) -> dict[str, bool]:
        return {name: p.poll() is None for name, p in self.processes.items()}

    def send(self, topic_name: str, key: str, envelope: Envelope) -> None:
        if self.producer is None:
            self.producer = Producer({**client_config(self.settings, OPERATOR), "linger.ms": 5})
        self.producer.produce(topic_name, encode(envelope), key=key.encode())
        self.producer.poll(0)

    def flush(self) -> None:
        assert self.producer is not None
        assert self.producer.flush(30) == 0

    def price(self, sku: str, amount: int = 1999, owner: str | None = None) -> None:
        """The catalog's product for ``sku``, as the catalog flow publishes it (the inventory flow learns its price)."""
        self.prices[sku] = self.prices.get(sku, 0) + 1
        envelope = catalog_product(sku, Money(amount, "EUR"), self.prices[sku], owner)
        self.send(CATALOG_EVENTS.name_for(self.settings.topic_prefix), sku, envelope)

    def restock(self, sku: str, units: int) -> None:
        """Stock for ``sku``; the first time, the catalog's product too (at 1999 EUR)."""
        if sku not in self.prices:
            self.price(sku)
        command = AdjustStock(sku=sku, delta=units, reason="test stock")
        envelope = envelop(command, producer=MessageProducer("partner", "p1"), occurred_at=datetime.now(UTC))
        self.send(INVENTORY_COMMANDS.name_for(self.settings.topic_prefix), sku, envelope)

    def place(self, order_id: str, lines: list[tuple[str, int]], token: str = "tok_visa") -> None:
        command = PlaceOrderV2(
            order_id=order_id,
            customer_id=f"c-{order_id}",
            payment_token=token,
            lines=[OrderItem(sku, qty) for sku, qty in lines],
        )
        envelope = envelop(command, producer=MessageProducer("user", f"c-{order_id}"), occurred_at=datetime.now(UTC))
        self.send(ORDER_COMMANDS.name_for(self.settings.topic_prefix), order_id, envelope)


@dataclass
class Observed:
    """Everything the flows published, as read back from the broker."""

    events: list[Envelope] = field(default_factory=list)

    def final(self) -> dict[str, str]:
        done: dict[str, str] = {}
        for event in self.events:
            if event.type in ("OrderConfirmed", "OrderCancelled"):
                done.setdefault(event.payload.order_id, event.type)  # type: ignore[attr-defined]
        return done

    def logical_duplicates(self) -> dict[tuple[str, ...], set[str]]:
        """Effects published under more than one id (a replay re-sends the same id; a bug mints a new one)."""
        ids: dict[tuple[str, ...], set[str]] = defaultdict(set)
        for event in self.events:
            payload = event.payload
            key = (event.type, getattr(payload, "order_id", ""), getattr(payload, "sku", ""))
            if event.type != "StockLevelChanged":
                ids[key].add(event.id)
        return {k: v for k, v in ids.items() if len(v) > 1}

    def levels(self) -> dict[str, Envelope]:
        latest: dict[str, Envelope] = {}
        for event in self.events:
            if event.type == "StockLevelChanged":
                latest[event.payload.sku] = event  # type: ignore[attr-defined]
        return latest


def observe(settings: Settings, orders: set[str], timeout_s: float) -> Observed:
    """Read the event topics until every order is confirmed or cancelled (or the time is up)."""
    prefix = settings.topic_prefix
    consumer = Consumer(
        {
            **client_config(settings, OPERATOR),
            "group.id": f"{prefix}observer",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([t.name_for(prefix) for t in (ORDER_EVENTS, INVENTORY_EVENTS, STOCK_LEVELS)])
    seen = Observed()
    deadline = time.monotonic() + timeout_s
    quiet_since = None
    while time.monotonic() < deadline:
        batch = consumer.consume(1000, timeout=0.5)
        seen.events += [decode(m.value()) for m in batch if m.error() is None]
        if orders <= seen.final().keys():
            quiet_since = quiet_since or time.monotonic()
            if not batch and time.monotonic() - quiet_since > 3:  # let trailing stock events arrive
                break
    consumer.close()
    return seen


def gateway_stats(settings: Settings) -> dict[str, dict[str, int]]:
    return httpx.get(f"{settings.gateway_url}/_admin/stats", timeout=10).json()
