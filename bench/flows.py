"""Orders through the full saga (orders, inventory, payments flows + gateway) vs a plain consume-and-produce loop.

Run with the stack up: ``python -m bench.flows [--orders N]``. Flows only: commands are
pre-loaded into Kafka, no HTTP ingress. Prints a table:

- baseline: a confluent-kafka loop that consumes the pre-loaded commands and produces one
  record per command to the order events topic, same broker, same run;
- floor: ``bench.flow_floor``, a Bytewax flow with the flows' own Kafka input and output and a
  stateful step that only counts: one record in, one out, what any flow step costs at least;
- saga: the three flow processes taking every order to a terminal state: orders that ended
  over the time from the first OrderPlaced to the last OrderConfirmed or OrderCancelled.
  (A pre-loaded burst runs in phases: every order is placed and reserved, then authorized,
  then confirmed, so the confirmations' own rate is the last phase's speed, not the saga's:
  it is printed beside the peak, never used as it.)
- latency: OrderPlaced -> OrderConfirmed (the records' Kafka timestamps) at half the saga's
  measured peak rate, with PlaceOrder -> OrderConfirmed (the first hop included) beside it,
  after ``--warmup-seconds`` (5) of paced orders that are not counted, so that a broker just
  restarted, whose JIT has not met small requests yet, is warm before anything is measured.

The baseline counts records and the saga counts orders; each order is several records
through the flows, so the table also gives the records the flows consumed per order
(counted on their input topics) and the saga's rate in records.
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from flows.run import recovery_root
from ops.kafka_admin import admin_client, delete_topics_with_prefix, end_offsets, list_offsets
from ops.topology_admin import apply, lag
from tests.support.flows import catalog_product
from topology.access import OPERATOR
from topology.envelope import Producer as MessageProducer
from topology.envelope import decode, encode, envelop
from topology.kafka_client import client_config
from topology.messages import AdjustStock, Money, OrderItem, PlaceOrderV2
from topology.processes import PROCESSES
from topology.settings import Settings
from topology.topics import CATALOG_EVENTS, INVENTORY_COMMANDS, ORDER_COMMANDS, ORDER_EVENTS, PAYMENT_EVENTS, Topic

FLOWS = ("orders", "inventory", "payments")
SKUS = [f"sku-{i}" for i in range(50)]
BASELINE_ROUNDS = 3  # the loop is short and this machine drifts: the median of three


def place(order_id: str, i: int) -> bytes:
    command = PlaceOrderV2(
        order_id=order_id,
        customer_id=f"c{i % 997}",
        payment_token="tok_visa",
        lines=[OrderItem(SKUS[i % len(SKUS)], 1)],
    )
    return encode(envelop(command, producer=MessageProducer("user", f"c{i % 997}"), occurred_at=datetime.now(UTC)))


def reader(settings: Settings, *topics: Topic) -> Consumer:
    """A consumer of the topics from their start, in a group of its own."""
    consumer = Consumer(
        {
            **client_config(settings, OPERATOR),
            "group.id": f"bench-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic.name_for(settings.topic_prefix) for topic in topics])
    return consumer


def preload(settings: Settings, count: int, tag: str) -> None:
    """Every SKU in the catalog (its price, as the catalog flow publishes it) and stocked, then the orders."""
    producer = Producer({**client_config(settings, OPERATOR), "linger.ms": 20})
    for sku in SKUS:
        product = catalog_product(sku, Money(1999, "EUR"), seq=1)
        producer.produce(CATALOG_EVENTS.name_for(settings.topic_prefix), key=sku.encode(), value=encode(product))
    for sku in SKUS:
        stock = AdjustStock(sku=sku, delta=10**6, reason="bench")
        producer.produce(
            INVENTORY_COMMANDS.name_for(settings.topic_prefix),
            key=sku.encode(),
            value=encode(envelop(stock, producer=MessageProducer("service", "bench"), occurred_at=datetime.now(UTC))),
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


def baseline(settings: Settings, count: int, round_no: int = 0) -> float:
    """Consume the commands and produce one record each to a topic of its own: the plain loop's rate."""
    consumer = reader(settings, ORDER_COMMANDS)
    producer = Producer({**client_config(settings, OPERATOR), "linger.ms": 5, "enable.idempotence": True})
    target = f"{settings.topic_prefix}bench.baseline{round_no}"
    admin = AdminClient({**client_config(settings, OPERATOR)})
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


def floor(settings: Settings, count: int, round_no: int) -> float:
    """The rate of ``bench.flow_floor`` (a do-nothing Bytewax flow) over the pre-loaded commands, records/s."""
    if round_no == 0:  # the rounds share one output topic
        target = f"{settings.topic_prefix}bench.floor"
        admin = AdminClient({**client_config(settings, OPERATOR)})
        admin.create_topics([NewTopic(target, ORDER_EVENTS.partitions, 1)])[target].result(timeout=30)
    recovery = recovery_root(settings) / f"floor{round_no}"
    argv = [sys.executable, "-m", "bench.flow_floor", settings.topic_prefix, str(count), str(recovery)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        raise SystemExit(f"the floor flow failed: {done.stderr[-2000:]}")
    return float(done.stdout.split()[-1])


def start_flows(settings: Settings, logs: Path) -> list[subprocess.Popen[bytes]]:
    """The saga's flows, one process each; inventory first, the others once it holds every SKU's price.

    An inventory flow with no state reads the catalog's events beside the pre-loaded backlog, and a
    reservation it meets before its SKU's price is refused: the burst would measure cancellations.
    """
    # A burst queues every order at once: its steps wait far longer than a deadline meant for one order.
    env = {**os.environ, "SHOP_TOPIC_PREFIX": settings.topic_prefix, "SHOP_ORDER_STEP_TIMEOUT_S": "900"}
    shopstream = str(Path(sys.executable).parent / "shopstream")

    def start(name: str) -> subprocess.Popen[bytes]:
        log = (logs / f"{name}.log").open("wb")
        return subprocess.Popen([shopstream, "flow", name], env=env, stdout=log, stderr=subprocess.STDOUT)

    inventory = start("inventory")
    group = next(p for p in PROCESSES if p.name == "inventory").group_for(settings.topic_prefix) or ""
    catalog = CATALOG_EVENTS.name_for(settings.topic_prefix)
    deadline = time.monotonic() + 120
    while any(row.lag for row in lag(settings, [group]) if row.topic == catalog):
        if time.monotonic() > deadline or inventory.poll() is not None:
            raise SystemExit(f"the inventory flow did not read the catalog's prices; see {logs / 'inventory.log'}")
        time.sleep(0.5)
    return [inventory, *(start(name) for name in FLOWS if name != "inventory")]


@dataclass
class Timings:
    """Per confirmed order, from the records' Kafka timestamps (set when each was produced)."""

    placed_to_confirmed: list[float]  # OrderPlaced -> OrderConfirmed, seconds: the target's measure
    command_to_confirmed: list[float]  # PlaceOrder -> OrderConfirmed, seconds: with the first hop
    confirmed_at: list[float]  # when each OrderConfirmed was produced
    placed_at: list[float]  # when each ended order's OrderPlaced was produced
    ended_at: list[float]  # when each order's OrderConfirmed or OrderCancelled was produced


def confirmed(settings: Settings, tag: str, count: int, timeout_s: float) -> Timings:
    """Wait for ``count`` orders tagged ``tag`` to end; how long each confirmed one took.

    Only Kafka timestamps are used, so how fast this reader catches up does not count. The
    command and the events are on different topics, which this reader may see in either
    order, so the timings are worked out once everything has been read.
    """
    consumer = reader(settings, ORDER_COMMANDS, ORDER_EVENTS)
    stamps: dict[str, dict[str, float]] = {}
    ended: set[str] = set()
    cancelled: set[str] = set()
    deadline = time.monotonic() + timeout_s
    done = False  # every order ended: read on until the topics are quiet, for commands not read yet
    while time.monotonic() < deadline:
        batch = consumer.consume(2000, timeout=1.0 if done else 0.5)
        if done and not batch:
            break
        for msg in batch:
            if msg.error() is not None:
                continue
            event = decode(msg.value())
            order_id = event.payload.order_id  # type: ignore[attr-defined]
            if not order_id.startswith(tag):
                continue
            stamps.setdefault(order_id, {}).setdefault(event.type, msg.timestamp()[1] / 1000)
            if event.type in ("OrderConfirmed", "OrderCancelled"):
                ended.add(order_id)
            if event.type == "OrderCancelled":
                cancelled.add(order_id)  # terminal, but not a confirmation: it has no latency to report
        done = len(ended) >= count
    consumer.close()
    timings = Timings([], [], [], [], [])
    for seen in stamps.values():
        ends = [seen[kind] for kind in ("OrderConfirmed", "OrderCancelled") if kind in seen]
        if ends and "OrderPlaced" in seen:
            timings.placed_at.append(seen["OrderPlaced"])
            timings.ended_at.append(min(ends))
        if {"PlaceOrder", "OrderPlaced", "OrderConfirmed"} <= seen.keys():
            at = seen["OrderConfirmed"]
            timings.placed_to_confirmed.append(at - seen["OrderPlaced"])
            timings.command_to_confirmed.append(at - seen["PlaceOrder"])
            timings.confirmed_at.append(at)
    if cancelled:
        print(f"note: {len(cancelled)} orders tagged {tag!r} were cancelled (e.g. a step timed out)", file=sys.stderr)
    return timings


def settle(settings: Settings, count: int, timeout_s: float = 300, quiet_s: float = 5.0) -> None:
    """Wait until ``count`` payments are captured (the tail of the saga), or none was for ``quiet_s``."""
    consumer = reader(settings, PAYMENT_EVENTS)
    captured: set[str] = set()
    deadline = time.monotonic() + timeout_s
    last = time.monotonic()
    while len(captured) < count and time.monotonic() < min(deadline, last + quiet_s):
        for msg in consumer.consume(2000, timeout=0.5):
            if msg.error() is None and b"PaymentCaptured" in msg.value():
                captured.add(decode(msg.value()).payload.order_id)  # type: ignore[attr-defined]
                last = time.monotonic()
    consumer.close()


def paced(settings: Settings, tag: str, rate: float, seconds: float) -> int:
    """Produce ``rate`` orders a second for ``seconds``: encoded beforehand, sent in 2 ms ticks."""
    producer = Producer({**client_config(settings, OPERATOR), "linger.ms": 1})
    total = int(rate * seconds)
    records = [(f"{tag}{i}".encode(), place(f"{tag}{i}", i)) for i in range(total)]
    topic = ORDER_COMMANDS.name_for(settings.topic_prefix)
    began, sent = time.perf_counter(), 0
    while sent < total:
        due = min(total, int((time.perf_counter() - began) * rate) + 1)
        for key, value in records[sent:due]:
            producer.produce(topic, key=key, value=value)
        sent = due
        producer.poll(0)
        time.sleep(0.002)
    producer.flush(60)
    return total


def consumed_per_order(settings: Settings, orders: int) -> float:
    """Records the three flows consumed per order: every record on their input topics, over the orders."""
    inputs = {topic for process in PROCESSES if process.name in FLOWS for topic in process.consumes}
    partitions = [TopicPartition(t.name_for(settings.topic_prefix), p) for t in inputs for p in range(t.partitions)]
    admin, _ = admin_client(settings)
    ends = end_offsets(admin, partitions)
    starts = list_offsets(admin, partitions, OffsetSpec.earliest)
    return sum(ends[key] - starts[key] for key in ends) / orders


def clean_up(settings: Settings, processes: list[subprocess.Popen[bytes]]) -> None:
    """The flows stopped, and their recovery stores and topics (the run's private prefix) removed."""
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(30)
    shutil.rmtree(recovery_root(settings), ignore_errors=True)
    delete_topics_with_prefix(settings, settings.topic_prefix)


def saga_rate_of(peak: Timings) -> float:
    """Orders ended per second over a pre-loaded burst: from the first placed to the last ended."""
    return len(peak.ended_at) / (max(peak.ended_at) - min(peak.placed_at))


def burst(base: Settings, orders: int) -> float:
    """The flows alone (orders, inventory, payments as processes) taking a pre-loaded burst: orders ended/s.

    What ``main`` measures as the saga's peak, under a private prefix removed after; for a
    benchmark of the whole system to compare itself with in its own run.
    """
    settings = base.model_copy(update={"topic_prefix": f"burst{uuid.uuid4().hex[:6]}."})
    apply(settings)
    logs = base.stack_dir / "logs" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        preload(settings, orders, "p")
        processes = start_flows(settings, logs)
        peak = confirmed(settings, "p", orders, timeout_s=600)
        if len(peak.confirmed_at) < orders // 2:
            raise SystemExit(f"only {len(peak.confirmed_at)} of {orders} orders confirmed; see {logs}")
        return saga_rate_of(peak)
    finally:
        clean_up(settings, processes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=5.0,
        help="paced orders at half the peak before the measured ones, not counted (0: none)",
    )
    parser.add_argument(
        "--also-at",
        type=float,
        nargs="*",
        default=[0.3, 0.4],
        help="fractions of the peak to measure latency at besides one half (where the target is)",
    )
    args = parser.parse_args()
    base = Settings.from_env()
    settings = base.model_copy(update={"topic_prefix": f"bench{uuid.uuid4().hex[:6]}."})
    apply(settings)
    logs = base.stack_dir / "logs" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        preload(settings, args.orders, "p")
        base_rates, floor_rates = [], []
        for n in range(BASELINE_ROUNDS):  # alternating, so drift touches both alike
            base_rates.append(baseline(settings, args.orders, n))
            floor_rates.append(floor(settings, args.orders, n))
        base_rate, floor_rate = statistics.median(base_rates), statistics.median(floor_rates)
        processes = start_flows(settings, logs)
        peak = confirmed(settings, "p", args.orders, timeout_s=600)
        if len(peak.confirmed_at) < args.orders // 2:
            raise SystemExit(f"only {len(peak.confirmed_at)} of {args.orders} orders confirmed; see {logs}")
        saga_rate = saga_rate_of(peak)
        ends = sorted(peak.confirmed_at)
        window = ends[int(len(ends) * 0.05) :]
        confirming = (len(window) - 1) / (window[-1] - window[0])  # the last phase's own rate, for the record
        settle(settings, args.orders)  # let the captures behind the confirmations finish before pacing
        per_order = consumed_per_order(settings, args.orders)
        half = saga_rate / 2
        if args.warmup_seconds:  # paced traffic first, not counted: the broker's JIT warms to small requests
            warm = paced(settings, "w", half, args.warmup_seconds)
            confirmed(settings, "w", warm, timeout_s=120)
        sent = paced(settings, "l", half, args.latency_seconds)
        paced_run = confirmed(settings, "l", sent, timeout_s=120)
        others: list[tuple[float, Timings]] = []
        for n, fraction in enumerate(args.also_at):
            settle(settings, args.orders + sent)  # nothing left over from the run before
            count = paced(settings, f"a{n}-", saga_rate * fraction, args.latency_seconds)
            others.append((saga_rate * fraction, confirmed(settings, f"a{n}-", count, timeout_s=120)))
    finally:
        clean_up(settings, processes)
    placed = sorted(paced_run.placed_to_confirmed)
    command = sorted(paced_run.command_to_confirmed)
    rows = [
        ("baseline: consume+decode+produce loop, median (records/s)", f"{base_rate:,.0f}"),
        ("floor: a do-nothing Bytewax flow, median (records/s)", f"{floor_rate:,.0f}"),
        ("floor / baseline", f"{floor_rate / base_rate:.1%}"),
        ("saga: orders ended, pre-loaded burst (orders/s)", f"{saga_rate:,.0f}"),
        ("saga orders/s / baseline records/s", f"{saga_rate / base_rate:.1%}"),
        ("records the flows consumed per order", f"{per_order:.1f}"),
        ("saga records consumed/s / baseline records/s", f"{saga_rate * per_order / base_rate:.1%}"),
        (f"OrderPlaced -> OrderConfirmed at {half:,.0f}/s: p50 (ms)", f"{percentile(placed, 0.5):,.0f}"),
        (f"OrderPlaced -> OrderConfirmed at {half:,.0f}/s: p99 (ms)", f"{percentile(placed, 0.99):,.0f}"),
        (f"PlaceOrder -> OrderConfirmed at {half:,.0f}/s: p99 (ms)", f"{percentile(command, 0.99):,.0f}"),
        (f"orders confirmed of {sent:,} paced", f"{len(placed):,}"),
    ]
    for rate, run in others:
        ordered = sorted(run.placed_to_confirmed)
        rows.append((f"OrderPlaced -> OrderConfirmed at {rate:,.0f}/s: p50 / p99 (ms)", latency_pair(ordered)))
    print(
        f"{args.orders:,} orders pre-loaded; {len(SKUS)} SKUs; one worker per flow; 2 cores;"
        f" {args.warmup_seconds:g} s paced warm-up before the latency runs, not counted"
    )
    print("baseline rounds (records/s): " + ", ".join(f"{r:,.0f}" for r in base_rates))
    print("floor rounds (records/s): " + ", ".join(f"{r:,.0f}" for r in floor_rates))
    print(
        f"the burst's confirmations alone came at {confirming:,.0f}/s (last 95%; its last phase, not the saga's rate)"
    )
    print(f"| {'case':<58} | {'value':>10} |")
    print(f"|{'-' * 60}|{'-' * 12}|")
    for name, value in rows:
        print(f"| {name:<58} | {value:>10} |")
    print(
        "targets: saga >= 2,000 orders/s, >= 25% of baseline, "
        "p99 OrderPlaced -> OrderConfirmed < 300 ms at half the peak"
    )


def latency_pair(ordered: list[float]) -> str:
    return f"{percentile(ordered, 0.5):,.0f} / {percentile(ordered, 0.99):,.0f}" if ordered else "none"


def percentile(ordered: list[float], fraction: float) -> float:
    """The value at ``fraction`` of the sorted seconds, in milliseconds (nearest rank)."""
    return ordered[max(0, int(len(ordered) * fraction + 0.5) - 1)] * 1000


if __name__ == "__main__":
    main()
