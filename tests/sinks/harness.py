"""Sinks as real processes on the real stack, in a scope of their own, and what they left in the stores.

A ``Scope`` is a private set of names in every store (topic prefix, PostgreSQL schema,
Redis key prefix, index prefix, Mongo database) with the topology applied and the schema
migrated. ``dump`` reads a store back in a canonical order with the scope's names taken
out, so two scopes fed the same events compare equal byte for byte.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pymongo
import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from elasticsearch import Elasticsearch
from psycopg import sql

from ops.db import migrate
from ops.kafka_admin import delete_topics_with_prefix, reader
from ops.topology_admin import apply, lag
from tests.processes import stop_all
from topology.dlq import DeadLetter
from topology.envelope import Envelope, encode
from topology.envelope import Producer as MessageProducer
from topology.messages import (
    Message,
    Money,
    NotificationFailed,
    NotificationSent,
    OrderCancelled,
    OrderConfirmed,
    OrderDelivered,
    OrderLine,
    OrderPlaced,
    OrderShipped,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRefunded,
    ProductUpserted,
    ProfileUpdated,
    StockLevelChanged,
    UserRegistered,
)
from topology.processes import PROCESSES
from topology.settings import Settings
from topology.topics import (
    CATALOG_EVENTS,
    NOTIFICATION_EVENTS,
    ORDER_EVENTS,
    PAYMENT_EVENTS,
    STOCK_LEVELS,
    USER_EVENTS,
    Topic,
)

SINKS = ("postgres", "redis", "search", "mongo")
BIN = Path(sys.executable).parent
BASE_TIME = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
ID_SPACE = uuid.UUID("0c0ffee0-5eed-4bad-9a11-5ca1ab1e0000")
HISTORY_TAG = "h"


@dataclass(frozen=True)
class Event:
    topic: Topic
    key: str
    envelope: Envelope


def _event(topic: Topic, key: str, message: Message, seq: int | None, n: int, tag: str) -> Event:
    envelope = Envelope(
        id=uuid.uuid5(ID_SPACE, f"{tag}/{n}").hex,
        type=message.TYPE,
        version=message.VERSION,
        occurred_at=BASE_TIME + timedelta(seconds=n),
        correlation_id=uuid.uuid5(ID_SPACE, f"{tag}/{key}").hex,
        traceparent=f"00-{uuid.uuid5(ID_SPACE, f'{tag}/{key}/trace').hex}-{n:016x}-01",
        seq=seq,
        producer=MessageProducer("service", topic.name.split(".")[1]),
        payload=message,
    )
    return Event(topic, key, envelope)


def history(seed: int = 7, orders: int = 60, skus: int = 8, users: int = 10, tag: str = HISTORY_TAG) -> list[Event]:
    """A plausible stream of the flows' events: each entity's events in seq order, entities interleaved."""
    rng = random.Random(seed)
    per_entity: list[list[tuple[Topic, str, Message]]] = []
    sku_ids = [f"sku-{i}" for i in range(skus)]
    user_ids = [f"user-{i}" for i in range(users)]
    for user in user_ids:
        steps: list[tuple[Topic, str, Message]] = [
            (USER_EVENTS, user, UserRegistered(user_id=user, email=f"{user}@example.com", name=f"User {user}"))
        ]
        for k in range(rng.randint(0, 2)):
            phone = f"+4930{rng.randint(1000000, 9999999)}" if rng.random() < 0.7 else None
            steps.append((USER_EVENTS, user, ProfileUpdated(user_id=user, name=f"User {user} v{k}", phone=phone)))
        per_entity.append(steps)
    for sku in sku_ids:
        per_entity.append(
            [
                (
                    CATALOG_EVENTS,
                    sku,
                    ProductUpserted(
                        sku=sku,
                        title=f"{rng.choice(['red', 'blue', 'green'])} {rng.choice(['mug', 'lamp', 'chair'])} {k}",
                        description="hand made",
                        brand=rng.choice(["acme", "globex"]),
                        category=rng.choice(["kitchen", "living"]),
                        tags=rng.sample(["new", "sale", "eco", "gift"], 2),
                        price=Money(rng.randint(100, 9000), "EUR"),
                    ),
                )
                for k in range(rng.randint(1, 3))
            ]
        )
        total = rng.randint(10, 50)
        levels = []
        for _ in range(rng.randint(2, 6)):
            reserved = rng.randint(0, total)
            levels.append(
                (
                    STOCK_LEVELS,
                    sku,
                    StockLevelChanged(sku=sku, total=total, reserved=reserved, available=total - reserved),
                )
            )
        per_entity.append(levels)
    for i in range(orders):
        order_id, customer = f"order-{i}", rng.choice(user_ids)
        lines = [
            OrderLine(sku, rng.randint(1, 3), Money(rng.randint(100, 900), "EUR")) for sku in rng.sample(sku_ids, 2)
        ]
        total = Money(sum(line.quantity * line.unit_price.amount for line in lines), "EUR")
        steps = [
            (ORDER_EVENTS, order_id, OrderPlaced(order_id=order_id, customer_id=customer, lines=lines, total=total))
        ]
        pay: list[tuple[Topic, str, Message]] = []
        if rng.random() < 0.25:
            steps.append(
                (ORDER_EVENTS, order_id, OrderCancelled(order_id=order_id, customer_id=customer, reason="no stock"))
            )
            pay.append((PAYMENT_EVENTS, order_id, PaymentDeclined(order_id=order_id, reason="card declined")))
        else:
            steps.append((ORDER_EVENTS, order_id, OrderConfirmed(order_id=order_id, customer_id=customer, total=total)))
            pay.append(
                (PAYMENT_EVENTS, order_id, PaymentAuthorized(order_id=order_id, payment_id=f"pay-{i}", amount=total))
            )
            pay.append(
                (PAYMENT_EVENTS, order_id, PaymentCaptured(order_id=order_id, payment_id=f"pay-{i}", amount=total))
            )
            if rng.random() < 0.6:
                steps.append(
                    (ORDER_EVENTS, order_id, OrderShipped(order_id=order_id, carrier="dhl", tracking_code=f"T{i}"))
                )
                if rng.random() < 0.5:
                    steps.append((ORDER_EVENTS, order_id, OrderDelivered(order_id=order_id)))
            elif rng.random() < 0.3:
                refund = Money(total.amount // 2, "EUR")
                pay.append(
                    (PAYMENT_EVENTS, order_id, PaymentRefunded(order_id=order_id, payment_id=f"pay-{i}", amount=refund))
                )
        per_entity += [steps, pay]
        note = f"note-{i}"
        if rng.random() < 0.2:
            fail = NotificationFailed(notification_id=note, user_id=customer, channel="email", reason="mailbox full")
            per_entity.append([(NOTIFICATION_EVENTS, customer, fail)])
        else:
            per_entity.append(
                [
                    (
                        NOTIFICATION_EVENTS,
                        customer,
                        NotificationSent(notification_id=note, user_id=customer, channel="sms"),
                    )
                ]
            )
    # Interleave entities while keeping each one's own order; seq counts per entity.
    cursors = [0] * len(per_entity)
    out: list[Event] = []
    live = [i for i, steps in enumerate(per_entity) if steps]
    while live:
        i = rng.choice(live)
        topic, key, message = per_entity[i][cursors[i]]
        cursors[i] += 1
        out.append(_event(topic, key, message, cursors[i], len(out), f"{tag}/{i}"))
        if cursors[i] == len(per_entity[i]):
            live.remove(i)
    return out


def shuffled_within_keys(events: list[Event], seed: int) -> list[Event]:
    """The same events, each entity's history permuted (across keys the interleaving is kept)."""
    rng = random.Random(seed)
    slots: dict[tuple[str, str], list[int]] = defaultdict(list)
    for n, e in enumerate(events):
        slots[e.topic.name, e.key].append(n)
    out = list(events)
    for positions in slots.values():
        picked = [events[p] for p in positions]
        rng.shuffle(picked)
        for p, e in zip(positions, picked, strict=True):
            out[p] = e
    return out


@dataclass
class Scope:
    """Private names in every store, the topology applied, the schema migrated."""

    base: Settings
    logs: Path
    name: str = field(default_factory=lambda: f"s{uuid.uuid4().hex[:10]}")
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    #: Settings over the test defaults (short checkpoints and retries); the benchmark keeps production's.
    tuning: dict[str, object] = field(
        default_factory=lambda: {"sink_commit_interval_s": 0.2, "sink_retry_after_s": 1.0}
    )

    def __post_init__(self) -> None:
        self.settings = self.base.model_copy(
            update={
                "topic_prefix": f"{self.name}.",
                "pg_schema": self.name,
                "redis_prefix": f"{self.name}:",
                "search_prefix": f"{self.name}-",
                "mongo_database": self.name,
                **self.tuning,
            }
        )
        apply(self.settings)
        migrate(self.settings)
        self._producer = Producer({"bootstrap.servers": self.settings.bootstrap_servers, "enable.idempotence": True})

    def produce(self, events: Iterable[Event]) -> int:
        count = 0
        for e in events:
            self.produce_raw(e.topic, e.key, encode(e.envelope))
            count += 1
        self.flush()
        return count

    def produce_raw(self, topic: Topic, key: str, value: bytes | None) -> None:
        while True:
            try:
                self._producer.produce(topic.name_for(self.settings.topic_prefix), value=value, key=key.encode())
                return
            except BufferError:
                self._producer.poll(0.1)

    def flush(self) -> None:
        assert self._producer.flush(30) == 0, "every record delivered"

    def start(self, sink: str, instance: str = "", **env: str) -> None:
        """Start a sink process; another ``instance`` of the same sink joins its consumer group."""
        log = (self.logs / f"{self.name}-{sink}{instance}.log").open("ab")
        self.processes[sink + instance] = subprocess.Popen(
            [str(BIN / "shopstream"), "sink", sink],
            env={**os.environ, **self.settings.to_env(), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self, sink: str) -> None:
        process = self.processes.pop(sink)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def stop(self) -> None:
        stop_all(self.processes.values(), grace_s=15)
        self.processes.clear()

    def group(self, sink: str) -> str:
        process = next(p for p in PROCESSES if p.kind == "sink" and p.name == sink)
        return process.group_for(self.settings.topic_prefix) or ""

    def progress(self, sink: str) -> tuple[int, int]:
        """(records committed, records on the topics) for a sink's group."""
        rows = lag(self.settings, [self.group(sink)])
        return sum(r.committed or 0 for r in rows), sum(r.end for r in rows)

    def consumes(self, sink: str, events: Iterable[Event]) -> int:
        """How many of ``events`` travel on the topics the sink reads."""
        process = next(p for p in PROCESSES if p.kind == "sink" and p.name == sink)
        return sum(1 for e in events if e.topic in process.consumes)

    def wait_committed(self, sink: str, target: int, timeout_s: float = 600) -> None:
        """Poll the group's committed offsets (one request, every 10 ms) until they add up to ``target``."""
        process = next(p for p in PROCESSES if p.kind == "sink" and p.name == sink)
        watcher = Consumer({"bootstrap.servers": self.settings.bootstrap_servers, "group.id": self.group(sink)})
        partitions = [
            TopicPartition(t.name_for(self.settings.topic_prefix), n)
            for t in process.consumes
            for n in range(t.partitions)
        ]
        deadline = time.monotonic() + timeout_s
        try:
            while sum(max(tp.offset, 0) for tp in watcher.committed(partitions, timeout=10)) < target:
                assert time.monotonic() < deadline, f"{sink} did not commit {target} records in {timeout_s}s"
                time.sleep(0.01)
        finally:
            watcher.close()

    def wait_caught_up(self, sinks: Iterable[str], timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        pending = set(sinks)
        while pending:
            for sink in list(pending):
                process = self.processes.get(sink)
                if process is not None and process.poll() is not None:
                    raise AssertionError(f"{sink} sink exited with {process.returncode}; see {self.logs}")
                committed, end = self.progress(sink)
                if committed == end:
                    pending.discard(sink)
            if pending and time.monotonic() > deadline:
                raise AssertionError(f"not caught up in {timeout_s}s: {sorted(pending)}; see {self.logs}")
            time.sleep(0.2)

    def dead_letters(self, topic: Topic) -> list[tuple[bytes | None, DeadLetter]]:
        consumer = reader(self.settings, **{"auto.offset.reset": "earliest"})
        consumer.subscribe([f"{topic.name_for(self.settings.topic_prefix)}.dlq"])
        found: list[tuple[bytes | None, DeadLetter]] = []
        idle_until = time.monotonic() + 5
        while time.monotonic() < idle_until:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            found.append((msg.value(), DeadLetter.from_headers(msg.headers())))
            idle_until = time.monotonic() + 2
        consumer.close()
        return found

    def dump(self, sink: str) -> str:
        """The store's contents of this scope, canonical, with the scope's names taken out."""
        text = {"postgres": self._dump_postgres, "redis": self._dump_redis, "search": self._dump_search}.get(
            sink, self._dump_mongo
        )()
        return text.replace(self.name, "<scope>")

    def _dump_postgres(self) -> str:
        lines = []
        with psycopg.connect(self.settings.pg_url) as conn:
            tables = conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
                " AND table_name NOT LIKE '%%yoyo%%' ORDER BY 1",
                (self.name,),
            ).fetchall()
            for (table,) in tables:
                rows = conn.execute(
                    sql.SQL("SELECT * FROM {}.{} ORDER BY 1, 2").format(
                        sql.Identifier(self.name), sql.Identifier(table)
                    )
                ).fetchall()
                lines += [f"{table}: {row!r}" for row in rows]
        return "\n".join(lines)

    def _dump_redis(self) -> str:
        client = redis.Redis.from_url(self.settings.redis_url, decode_responses=True)
        keys = sorted(client.scan_iter(match=f"{self.settings.redis_prefix}*", count=1000))
        text = "\n".join(f"{k}: {sorted(client.hgetall(k).items())}" for k in keys)
        client.close()
        return text

    def _dump_search(self) -> str:
        with Elasticsearch(self.settings.search_url, request_timeout=30) as es:
            lines = []
            for alias in ("products", "orders"):
                name = f"{self.settings.search_prefix}{alias}"
                if not es.indices.exists_alias(name=name):
                    continue
                es.indices.refresh(index=name)
                hits = es.search(index=name, size=10_000, version=True)
                docs = sorted(
                    (h["_id"], h["_version"], json.dumps(h["_source"], sort_keys=True)) for h in hits["hits"]["hits"]
                )
                lines += [f"{alias}: {d!r}" for d in docs]
            return "\n".join(lines)

    def _dump_mongo(self) -> str:
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(self.settings.mongo_url)
        db = client[self.settings.mongo_database]
        lines = [f"{c}: {doc!r}" for c in sorted(db.list_collection_names()) for doc in db[c].find().sort("_id", 1)]
        client.close()
        return "\n".join(lines)

    def close(self) -> None:
        self.stop()
        self._producer.flush(10)
        delete_topics_with_prefix(self.settings, self.settings.topic_prefix)
        with psycopg.connect(self.settings.pg_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.name)))
        client = redis.Redis.from_url(self.settings.redis_url)
        keys = list(client.scan_iter(match=f"{self.settings.redis_prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
        with Elasticsearch(self.settings.search_url, request_timeout=30) as es:
            for name in es.indices.get(index=f"{self.settings.search_prefix}*", allow_no_indices=True):
                es.indices.delete(index=name)
            for template in ("products", "orders"):
                if es.indices.exists_index_template(name=f"{self.settings.search_prefix}{template}"):
                    es.indices.delete_index_template(name=f"{self.settings.search_prefix}{template}")
        mongo: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(self.settings.mongo_url)
        mongo.drop_database(self.settings.mongo_database)
        mongo.close()
