"""The broker's floor under the whole system: an order's records relayed hop by hop, nothing of ours around them.

What the broker does for one order in ``make run``, with plain confluent-kafka clients in place
of every process: the front door produces the command; relays in place of the orders,
inventory, payments and notifications flows consume their topics and, for each record, produce
at once what that flow produces for it (no decoding, no state, no logic); consumers in place of
the four sinks read what each sink reads and commit as often. The same topics (the topology's
partitions, under a private prefix), the same records per order on each topic (orders.commands
1, orders.inbox 3, orders.events 2, inventory.commands 2, inventory.events 2, stock.levels 2,
payments.commands 2, payments.events 2, notifications.commands 1, notifications.events 1), the
same fan-out to consumers, the same client settings (fetch wait and min bytes, linger) as the
processes they stand for, one OS process per stand-in.

Printed per rate: the broker's CPU per order, every stand-in's CPU per order, p50/p99 from the
command to the order's "confirmed" record. No system that moves an order's records through this
broker with these settings can cost it less.

Run: ``python -m bench.broker_floor [--rates 50,100,200] [--seconds 20]`` with the stack up.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from bench.e2e import cpu_by_name, sample
from ops import topology_admin
from ops.stack.launcher import Stack
from topology.access import OPERATOR
from topology.kafka_client import client_config
from topology.settings import Settings
from topology.topics import (
    INVENTORY_COMMANDS,
    INVENTORY_EVENTS,
    NOTIFICATION_COMMANDS,
    NOTIFICATION_EVENTS,
    ORDER_COMMANDS,
    ORDER_EVENTS,
    ORDER_INBOX,
    PAYMENT_COMMANDS,
    PAYMENT_EVENTS,
    STOCK_LEVELS,
    Topic,
)

#: About the size of an envelope on these topics.
RECORD_BYTES = 420
Rule = dict[tuple[str, str], list[tuple[Topic, str]]]

#: What each flow produces for each record it reads, by (topic, stage): the saga's shape.
RELAYS: dict[str, Rule] = {
    "orders": {
        (ORDER_COMMANDS.name, "place"): [(ORDER_INBOX, "placed")],
        (ORDER_INBOX.name, "placed"): [(ORDER_EVENTS, "placed"), (INVENTORY_COMMANDS, "reserve")],
        (ORDER_INBOX.name, "reserved"): [(PAYMENT_COMMANDS, "authorize")],
        (ORDER_INBOX.name, "authorized"): [
            (ORDER_EVENTS, "confirmed"),
            (INVENTORY_COMMANDS, "commit"),
            (PAYMENT_COMMANDS, "capture"),
            (NOTIFICATION_COMMANDS, "send"),
        ],
    },
    "inventory": {
        (INVENTORY_COMMANDS.name, "reserve"): [
            (INVENTORY_EVENTS, "reserved"),
            (STOCK_LEVELS, "level"),
            (ORDER_INBOX, "reserved"),
        ],
        (INVENTORY_COMMANDS.name, "commit"): [(INVENTORY_EVENTS, "committed"), (STOCK_LEVELS, "level")],
    },
    "payments": {
        (PAYMENT_COMMANDS.name, "authorize"): [(PAYMENT_EVENTS, "authorized"), (ORDER_INBOX, "authorized")],
        (PAYMENT_COMMANDS.name, "capture"): [(PAYMENT_EVENTS, "captured")],
    },
    "notifications": {(NOTIFICATION_COMMANDS.name, "send"): [(NOTIFICATION_EVENTS, "sent")]},
}
#: What each sink reads (its declaration's topics that carry an order's records).
READERS: dict[str, tuple[Topic, ...]] = {
    "postgres": (ORDER_EVENTS, PAYMENT_EVENTS, STOCK_LEVELS),
    "redis": (STOCK_LEVELS, ORDER_EVENTS),
    "search": (ORDER_EVENTS,),
    "mongo": (ORDER_EVENTS, INVENTORY_EVENTS, PAYMENT_EVENTS, NOTIFICATION_EVENTS),
}


def _value(stage: str, sent_ns: bytes) -> bytes:
    head = f"{stage}|".encode() + sent_ns + b"|"
    return head + b"x" * (RECORD_BYTES - len(head))


def _fetch(settings: Settings) -> dict[str, object]:
    return {
        "fetch.wait.max.ms": settings.kafka_fetch_wait_ms,
        "fetch.min.bytes": settings.kafka_fetch_min_bytes,
        "isolation.level": "read_committed",
    }


def relay(name: str, prefix: str) -> None:
    """A flow's stand-in: each record read becomes the records its rule says, produced at once."""
    settings = Settings.from_env()
    config = client_config(settings, OPERATOR)
    rules = {(prefix + topic, stage): outs for (topic, stage), outs in RELAYS[name].items()}
    consumer = Consumer(
        {**config, **_fetch(settings), "group.id": f"{prefix}floor.{name}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe(sorted({topic for topic, _ in rules}))
    producer = Producer({**config, "linger.ms": settings.flow_linger_ms, "enable.idempotence": True})
    poll_s = settings.flow_poll_ms / 1000  # a batch returns when full or after this: the flows' poll
    while True:
        for msg in consumer.consume(1000, poll_s):
            if msg.error() is not None:
                continue
            value = msg.value() or b""
            stage, sent, _ = value.split(b"|", 2)
            for topic, out in rules.get((msg.topic(), stage.decode()), []):
                producer.produce(topic.name_for(prefix), _value(out, sent), key=msg.key())
        producer.poll(0)


def reader(name: str, prefix: str) -> None:
    """A sink's stand-in: reads its topics and commits as often as the sinks do."""
    settings = Settings.from_env()
    consumer = Consumer(
        {
            **client_config(settings, OPERATOR),
            **_fetch(settings),
            "group.id": f"{prefix}floor.sink.{name}",
            "auto.offset.reset": "earliest",
            "auto.commit.interval.ms": int(settings.sink_commit_interval_s * 1000),
        }
    )
    consumer.subscribe([t.name_for(prefix) for t in READERS[name]])
    while True:
        consumer.consume(5000, 0.5)


@dataclass
class Result:
    rate: float
    orders: int
    p50_ms: float
    p99_ms: float
    broker_ms: float
    clients_ms: float
    per_process: dict[str, float]


def _confirmations(settings: Settings, prefix: str, latencies: list[float], stop: threading.Event) -> None:
    consumer = Consumer(
        {
            **client_config(settings, OPERATOR),
            **_fetch(settings),
            "group.id": f"{prefix}floor.observer",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([ORDER_EVENTS.name_for(prefix)])
    while not stop.is_set():
        for msg in consumer.consume(1000, 0.2):
            if msg.error() is None and (msg.value() or b"").startswith(b"confirmed|"):
                sent = int((msg.value() or b"").split(b"|", 2)[1])
                latencies.append((time.time_ns() - sent) / 1e6)
    consumer.close()


def one_rate(settings: Settings, prefix: str, rate: float, seconds: float, processes: dict[int, str]) -> Result:
    latencies: list[float] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_confirmations, args=(settings, prefix, latencies, stop))
    watcher.start()
    producer = Producer({**client_config(settings, OPERATOR), "linger.ms": 1, "enable.idempotence": True})
    total = int(rate * seconds)
    before = sample(processes)
    began = time.monotonic()
    for i in range(total):
        due = began + i / rate
        if (wait := due - time.monotonic()) > 0:
            time.sleep(wait)
        producer.produce(
            ORDER_COMMANDS.name_for(prefix), _value("place", str(time.time_ns()).encode()), key=uuid.uuid4().bytes
        )
        producer.poll(0)
    producer.flush(30)
    deadline = time.monotonic() + 60
    while len(latencies) < total and time.monotonic() < deadline:
        time.sleep(0.1)
    after = sample(processes)
    stop.set()
    watcher.join()
    cpu = cpu_by_name(before, after)
    per_order = {name: seconds_used * 1000 / total for name, seconds_used in cpu.items()}
    ordered = sorted(latencies[:total])
    return Result(
        rate,
        len(ordered),
        statistics.median(ordered) if ordered else float("nan"),
        ordered[int(0.99 * (len(ordered) - 1))] if ordered else float("nan"),
        per_order.get("kafka", 0.0),
        sum(v for k, v in per_order.items() if k != "kafka"),
        per_order,
    )


def _rates(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.broker_floor", description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=_rates, default=[50.0, 100.0, 200.0])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.seconds <= 0 or args.seconds > 600 or not args.rates or min(args.rates) <= 0 or max(args.rates) > 5000:
        parser.error("--seconds must be in (0, 600] and each rate in (0, 5000]")
    base = Settings.from_env()
    prefix = f"floor{uuid.uuid4().hex[:6]}."
    settings = base.model_copy(update={"topic_prefix": prefix})
    topology_admin.apply(settings)
    ctx = mp.get_context("spawn")
    children = [ctx.Process(target=relay, args=(name, prefix), daemon=True) for name in RELAYS]
    children += [ctx.Process(target=reader, args=(name, prefix), daemon=True) for name in READERS]
    kafka_pid = next(s.pid for s in Stack(base).status() if s.name == "kafka")
    try:
        for child in children:
            child.start()
        time.sleep(8)  # every consumer joined its group
        processes = {kafka_pid or 0: "kafka"} | {
            c.pid or 0: f"{'relay' if i < len(RELAYS) else 'reader'} {name}"
            for i, (c, name) in enumerate(zip(children, [*RELAYS, *READERS], strict=True))
        }
        print(f"broker floor: {', '.join(RELAYS)} relayed, {', '.join(READERS)} read; {RECORD_BYTES} B records")
        one_rate(settings, prefix, 20, 3, processes)  # warm-up: every group has its partitions
        print("| offered/s | orders | command -> confirmed p50 / p99 | broker CPU/order | stand-ins' CPU/order |")
        print("|---|---|---|---|---|")
        for rate in args.rates:
            r = one_rate(settings, prefix, rate, args.seconds, processes)
            print(
                f"| {r.rate:.0f} | {r.orders} | {r.p50_ms:.0f} / {r.p99_ms:.0f} ms | {r.broker_ms:.2f} ms "
                f"| {r.clients_ms:.2f} ms |",
                flush=True,
            )
            top = sorted(r.per_process.items(), key=lambda kv: -kv[1])
            print("    " + ", ".join(f"{k} {v:.2f}" for k, v in top), flush=True)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.join(10)
        admin = AdminClient(client_config(base, OPERATOR))
        names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
        if names:
            for future in admin.delete_topics(names).values():
                future.result(30)


if __name__ == "__main__":
    main()
