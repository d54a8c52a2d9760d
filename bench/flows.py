"""Orders through the full saga (orders, inventory, payments flows + gateway) vs a plain consume-and-produce loop.

Run with the stack up: ``python -m bench.flows [--orders N]``. Flows only: commands are
pre-loaded into Kafka, no HTTP ingress. Prints a table:

- baseline: a confluent-kafka loop that consumes the pre-loaded commands and produces one
  record per command to the order events topic, same broker, same run;
- saga: the three flow processes taking every order to a terminal state;
- latency: OrderPlaced -> OrderConfirmed at half the saga's measured peak rate.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from flows.orders.logic import order_line
from ops.flowrun import recovery_dir
from ops.kafka_admin import delete_topics_with_prefix
from ops.topology_admin import apply
from topology.envelope import Principal, decode, encode, envelop
from topology.messages import AdjustStock, PlaceOrder
from topology.settings import Settings
from topology.topics import INVENTORY_COMMANDS, ORDER_COMMANDS, ORDER_EVENTS, PAYMENT_EVENTS, Topic

FLOWS = ("orders", "inventory", "payments")
SKUS = [f"sku-{i}" for i in range(50)]


def place(order_id: str, i: int) -> bytes:
    command = PlaceOrder(
        order_id=order_id,
        customer_id=f"c{i % 997}",
        payment_token="tok_visa",
        lines=[order_line(SKUS[i % len(SKUS)], 1, 1999)],
    )
    return encode(envelop(command, producer=Principal("user", f"c{i % 997}"), occurred_at=datetime.now(UTC)))


def reader(settings: Settings, topic: Topic) -> Consumer:
    """A consumer of one topic from its start, in a group of its own."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"bench-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic.name_for(settings.topic_prefix)])
    return consumer


def preload(settings: Settings, count: int, tag: str) -> None:
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 20})
    for sku in SKUS:
        stock = AdjustStock(sku=sku, delta=10**6, reason="bench")
        producer.produce(
            INVENTORY_COMMANDS.name_for(settings.topic_prefix),
            key=sku.encode(),
            value=encode(envelop(stock, producer=Principal("service", "bench"), occurred_at=datetime.now(UTC))),
        )
    for i in range(count):
        order_id = f"{tag}{i}"
        while True:
            try:
                producer.produce(
                    ORDER_COMMANDS.name_for(settings.topic_prefix), key=order_id.encode(), value=place(order_id, i)
                )
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0


def baseline(settings: Settings, count: int) -> float:
    """Consume the commands and produce one record each to the events topic: the plain loop's rate."""
    consumer = reader(settings, ORDER_COMMANDS)
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 5, "enable.idempotence": True})
    target = f"{settings.topic_prefix}bench.baseline"
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    admin.create_topics([NewTopic(target, ORDER_EVENTS.partitions, 1)])[target].result(timeout=30)
    seen, began = 0, None
    while seen < count:
        batch = consumer.consume(1000, timeout=1.0)
        if batch and began is None:
            began = time.perf_counter()
        for msg in batch:
            if msg.error() is None:
                decode(msg.value())  # the same decode the flows pay for
                while True:
                    try:
                        producer.produce(target, key=msg.key(), value=msg.value())
                        break
                    except BufferError:
                        producer.poll(0.05)
                seen += 1
        producer.poll(0)
    producer.flush(60)
    consumer.close()
    return count / (time.perf_counter() - (began or time.perf_counter()))


def start_flows(settings: Settings, logs: Path) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "SHOP_TOPIC_PREFIX": settings.topic_prefix}
    shopstream = str(Path(sys.executable).parent / "shopstream")
    return [
        subprocess.Popen(
            [shopstream, "flow", name], env=env, stdout=(logs / f"{name}.log").open("wb"), stderr=subprocess.STDOUT
        )
        for name in FLOWS
    ]


def confirmed(settings: Settings, tag: str, count: int, timeout_s: float) -> list[tuple[float, float]]:
    """(seconds from the order's placement to its confirmation, time of confirmation) per order.

    The confirmation time is the record's Kafka timestamp (set when the orders flow
    produced it), so how fast this reader catches up does not count.
    """
    consumer = reader(settings, ORDER_EVENTS)
    placed: dict[str, datetime] = {}
    done: list[tuple[float, float]] = []
    cancelled: set[str] = set()
    deadline = time.monotonic() + timeout_s
    while len(done) < count and time.monotonic() < deadline:
        for msg in consumer.consume(2000, timeout=0.5):
            if msg.error() is not None:
                continue
            event = decode(msg.value())
            order_id = event.payload.order_id  # type: ignore[attr-defined]
            if not order_id.startswith(tag):
                continue
            if event.type == "OrderPlaced":
                placed[order_id] = event.occurred_at
            elif event.type == "OrderCancelled":
                cancelled.add(order_id)
                count -= 1  # terminal, but not a confirmation: it has no latency to report
            elif event.type == "OrderConfirmed":
                produced_at = msg.timestamp()[1] / 1000
                done.append((produced_at - placed.get(order_id, event.occurred_at).timestamp(), produced_at))
    consumer.close()
    if cancelled:
        print(f"note: {len(cancelled)} orders tagged {tag!r} were cancelled (e.g. a step timed out)", file=sys.stderr)
    return done


def settle(settings: Settings, count: int, timeout_s: float = 300) -> None:
    """Wait until every pre-loaded order's payment is captured (the tail of the saga)."""
    consumer = reader(settings, PAYMENT_EVENTS)
    captured: set[str] = set()
    deadline = time.monotonic() + timeout_s
    while len(captured) < count and time.monotonic() < deadline:
        for msg in consumer.consume(2000, timeout=0.5):
            if msg.error() is None and b"PaymentCaptured" in msg.value():
                captured.add(decode(msg.value()).payload.order_id)  # type: ignore[attr-defined]
    consumer.close()


def paced(settings: Settings, tag: str, rate: float, seconds: float) -> int:
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 1})
    total = int(rate * seconds)
    began = time.perf_counter()
    for i in range(total):
        wait = began + i / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        producer.produce(
            ORDER_COMMANDS.name_for(settings.topic_prefix), key=f"{tag}{i}".encode(), value=place(f"{tag}{i}", i)
        )
        producer.poll(0)
    producer.flush(60)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    args = parser.parse_args()
    base = Settings.from_env()
    settings = base.model_copy(update={"topic_prefix": f"bench{uuid.uuid4().hex[:6]}."})
    apply(settings)
    logs = base.stack_dir / "logs" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        preload(settings, args.orders, "p")
        base_rate = baseline(settings, args.orders)
        processes = start_flows(settings, logs)
        peak = confirmed(settings, "p", args.orders, timeout_s=600)
        if len(peak) < args.orders // 2:
            raise SystemExit(f"only {len(peak)} of {args.orders} orders confirmed; see {logs}")
        ends = sorted(t for _, t in peak)
        window = ends[int(len(ends) * 0.05) :]  # skip flow start-up: rate over the last 95%
        saga_rate = (len(window) - 1) / (window[-1] - window[0])
        settle(settings, args.orders)  # let the captures behind the confirmations finish before pacing
        half = saga_rate / 2
        sent = paced(settings, "l", half, args.latency_seconds)
        latencies = sorted(d for d, _ in confirmed(settings, "l", sent, timeout_s=120))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
        for name in FLOWS:
            shutil.rmtree(recovery_dir(settings, name), ignore_errors=True)
        delete_topics_with_prefix(settings, settings.topic_prefix)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    print(f"{args.orders:,} orders pre-loaded; {len(SKUS)} SKUs; one worker per flow; 2 cores")
    print(f"| {'case':<52} | {'value':>12} |")
    print(f"|{'-' * 54}|{'-' * 14}|")
    print(f"| {'baseline: consume + decode + produce loop (msg/s)':<52} | {base_rate:>12,.0f} |")
    print(f"| {'saga: orders confirmed, pre-loaded burst (orders/s)':<52} | {saga_rate:>12,.0f} |")
    print(f"| {'saga / baseline':<52} | {saga_rate / base_rate:>12.1%} |")
    print(f"| {f'latency at {half:,.0f} orders/s: p50 (ms)':<52} | {p50:>12,.0f} |")
    print(f"| {f'latency at {half:,.0f} orders/s: p99 (ms)':<52} | {p99:>12,.0f} |")
    print("targets: saga >= 2,000 orders/s, >= 25% of baseline, p99 < 300 ms at half the peak rate")


if __name__ == "__main__":
    main()
