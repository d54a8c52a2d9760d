"""Prometheus metrics of the flow processes, served on the process's metrics port (``SHOP_METRICS_PORT``).

Records in and out of each flow's steps (``shop_flow_step_records_total``): read from Kafka
and produced to it (once per batch), handled by the flow's logic and emitted by it. They
are plain Python ints, added to where the flow already is (no counter lock, no call of
their own per record) and read at scrape time (``StepRecords``).

Bytewax 0.21 has its own per-step counters and step and snapshot durations, kept in Rust
once its dataflow API server runs; ``SHOP_FLOW_BYTEWAX_METRICS=true`` serves them instead
of prometheus-client's server (the same port, our families after Bytewax's). Off by default:
measured in ``bench/observability.py``'s round of 2026-12-02, a dataflow of tiny batches
spent 60-70% more CPU with them, a cost per step and per batch.

Per record, this module costs a dict lookup for each message a flow emits (business
counters: only the few event types counted pay for a counter increment) and an integer
addition per record handled: epochs are counted once per epoch, dead letters and gateway
or channel calls once each, and the keys held in state at scrape time from the recovery store.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from prometheus_client import REGISTRY, Counter, Histogram, disable_created_metrics, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from flows.notifications.port import Channel, Delivered, Delivery
from flows.payments.port import Answer, Approved, Call, GatewayResult, PaymentGateway
from topology.messages import (
    Message,
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    PaymentDeclined,
    StockRejected,
)
from topology.settings import Settings

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
EPOCHS = Counter("shop_flow_epochs", "Epochs the flow's output closed (its records confirmed by Kafka)", ["flow"])
EPOCH_SECONDS = Histogram(
    "shop_flow_epoch_seconds",
    "Time from one epoch's close to the next at the flow's output",
    ["flow"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
EPOCH_FLUSH_SECONDS = Histogram(
    "shop_flow_epoch_flush_seconds",
    "Time an epoch's close waited for Kafka to confirm the records the flow produced in it",
    ["flow"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
)
DEAD_LETTERS = Counter(
    "shop_flow_dead_letters",
    "Records a flow sent to a DLQ, by reason: undecodable bytes, a type misplaced on its topic, refused by the logic",
    ["flow", "reason"],
)
GATEWAY_CALLS = Counter(
    "shop_gateway_calls", "Payment gateway calls by outcome (unavailable: retries ran out)", ["operation", "outcome"]
)
GATEWAY_SECONDS = Histogram(
    "shop_gateway_call_seconds",
    "Time from a payment gateway call's start to its answer, retries included",
    ["operation"],
    buckets=LATENCY_BUCKETS,
)
CHANNEL_DELIVERIES = Counter(
    "shop_channel_deliveries", "Notification deliveries by channel and outcome", ["channel", "outcome"]
)
CHANNEL_SECONDS = Histogram(
    "shop_channel_delivery_seconds",
    "Time to deliver one notification through its channel, retries included",
    ["channel"],
    buckets=LATENCY_BUCKETS,
)
ORDERS_PLACED = Counter("shop_orders_placed", "Orders the saga accepted (OrderPlaced)")
ORDERS_CONFIRMED = Counter("shop_orders_confirmed", "Orders confirmed (OrderConfirmed)")
ORDERS_CANCELLED = Counter("shop_orders_cancelled", "Orders cancelled (OrderCancelled), by reason", ["reason"])
REVENUE = Counter(
    "shop_revenue_minor_units", "Totals of the confirmed orders, in the currency's minor units", ["currency"]
)
PAYMENT_DECLINES = Counter("shop_payment_declines", "Payments declined (PaymentDeclined), by reason", ["reason"])
STOCK_OUTS = Counter("shop_stock_outs", "Reservations rejected because the stock was short (StockRejected)")

DeadLetterReason = Literal["undecodable", "misplaced", "refused"]
_DEAD: dict[tuple[str, str], Any] = {}


def dead_letter(flow: str, reason: DeadLetterReason) -> None:
    child = _DEAD.get((flow, reason))
    if child is None:
        child = _DEAD[flow, reason] = DEAD_LETTERS.labels(flow, reason)
    child.inc()


# Business counters: a class of each reason, never the text (it carries SKUs and amounts). The saga's own
# reasons (flows/orders/logic.py) by their words; any other is the text a CancelOrder gave: the customer's.
CANCEL_REASONS = (
    ("out of stock", "out_of_stock"),
    ("payment declined", "payment_declined"),
    ("no catalog price", "unpriced"),
    ("timed out", "expired"),
    ("mixed currencies", "invalid"),
)
DECLINE_REASONS = {"card_declined": "card_declined", "order cancelled": "order_cancelled"}


def cancel_reason(text: str) -> str:
    lowered = text.lower()
    return next((kind for words, kind in CANCEL_REASONS if words in lowered), "customer")


def _placed(_message: Message) -> None:
    ORDERS_PLACED.inc()


def _confirmed(message: Message) -> None:
    assert isinstance(message, OrderConfirmed)
    ORDERS_CONFIRMED.inc()
    total = message.total
    REVENUE.labels(total.currency).inc(total.amount)


def _cancelled(message: Message) -> None:
    assert isinstance(message, OrderCancelled)
    ORDERS_CANCELLED.labels(cancel_reason(message.reason)).inc()


def _declined(message: Message) -> None:
    assert isinstance(message, PaymentDeclined)
    PAYMENT_DECLINES.labels(DECLINE_REASONS.get(message.reason, "gateway")).inc()


def _rejected(message: Message) -> None:
    assert isinstance(message, StockRejected)
    if not message.reason:  # a reason means something other than a shortage (a SKU without a price)
        STOCK_OUTS.inc()


#: What ``flows.envelopes.emit`` counts of the messages it envelops, by type (a dict lookup for the rest).
COUNTED: dict[type, Callable[[Message], None]] = {
    OrderPlaced: _placed,
    OrderConfirmed: _confirmed,
    OrderCancelled: _cancelled,
    PaymentDeclined: _declined,
    StockRejected: _rejected,
}


class Epochs:
    """A flow's epochs: the input tells each close, the output how long a close waited for Kafka.

    Bytewax snapshots every input partition at every epoch's close, records or none (``closed``);
    the output's partitions only in epochs they wrote in (``flushed``).
    """

    def __init__(self, flow: str) -> None:
        self.count, self.gap, self.flush = (
            EPOCHS.labels(flow),
            EPOCH_SECONDS.labels(flow),
            EPOCH_FLUSH_SECONDS.labels(flow),
        )
        self.last: float | None = None

    def closed(self) -> None:
        """An epoch closed (the input's snapshot)."""
        now = time.perf_counter()
        self.count.inc()
        if self.last is not None:
            self.gap.observe(now - self.last)
        self.last = now

    def flushed(self, started: float) -> None:
        """The output's close of an epoch began waiting for Kafka at ``started`` (``time.perf_counter``); done now."""
        self.flush.observe(time.perf_counter() - started)


#: Records per (flow, step, direction), plain ints added to by the worker, read by ``StepRecords``.
RECORDS: dict[tuple[str, str, str], int] = {}


class Records:
    """One step's count, in one direction: ``add`` per batch, ``seen`` as a branch predicate per record."""

    __slots__ = ("key",)

    def __init__(self, flow: str, step: str, direction: Literal["in", "out"]) -> None:
        self.key = (flow, step, direction)
        RECORDS.setdefault(self.key, 0)

    def add(self, count: int) -> None:
        RECORDS[self.key] += count

    def seen(self, handled: bool) -> bool:
        """``handled``, counted when true (the predicate of the branch that keeps a flow's own records)."""
        if handled:
            RECORDS[self.key] += 1
        return handled


class StepRecords(Collector):
    """``shop_flow_step_records_total{flow, step, direction}`` from ``RECORDS``."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "shop_flow_step_records",
            "Records into (in) and out of (out) a flow's steps: in read from Kafka, decode the flow's own,"
            " handle what its logic emitted, out produced to Kafka",
            labels=["flow", "step", "direction"],
        )
        for (flow, step, direction), count in sorted(dict(RECORDS).items()):
            family.add_metric([flow, step, direction], float(count))
        yield family

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily("shop_flow_step_records", "", labels=["flow", "step", "direction"])


def flow_of_stream(stream_id: str, dataflow_id: str) -> str:
    """The flow of a stream: ``orders`` of ``orders.saga.down`` and ``orders-inventory-payments.orders.saga.down``."""
    parts = stream_id.split(".")
    return parts[1] if "-" in dataflow_id and parts[0] == dataflow_id and len(parts) > 1 else parts[0]


def flow_of_step(step_id: str) -> str:
    """The flow of an output step: ``orders`` of ``orders.out`` and of ``orders-inventory-payments.orders.out``."""
    parts = step_id.split(".")
    return parts[-2] if len(parts) >= 2 else step_id


def begin_measured(gateway: PaymentGateway, call: Call, order_id: str) -> Answer:
    """``gateway.begin(call, order_id)``, counted by outcome and timed from the call's start to its answer."""
    started = time.perf_counter()
    answer = gateway.begin(call, order_id)

    def finish() -> GatewayResult:
        outcome = "unavailable"  # GatewayUnavailable: the adapter's retries ran out
        try:
            result = answer()
            outcome = "approved" if isinstance(result, Approved) else "declined"
            return result
        finally:
            GATEWAY_SECONDS.labels(call.operation).observe(time.perf_counter() - started)
            GATEWAY_CALLS.labels(call.operation, outcome).inc()

    return finish


class MeasuredChannel:
    """A notification channel whose deliveries are counted by outcome and timed."""

    def __init__(self, name: str, inner: Channel) -> None:
        self.name, self.inner = name, inner

    def deliver(self, notification_id: str, to: str, subject: str, body: str) -> Delivery:
        started, outcome = time.perf_counter(), "unavailable"
        try:
            delivery = self.inner.deliver(notification_id, to, subject, body)
            outcome = "delivered" if isinstance(delivery, Delivered) else "refused"
            return delivery
        finally:
            CHANNEL_SECONDS.labels(self.name).observe(time.perf_counter() - started)
            CHANNEL_DELIVERIES.labels(self.name, outcome).inc()

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


class StateKeys(Collector):
    """``shop_flow_state_keys``: the keys each stateful step holds, as of the recovery store's last snapshots.

    Counted at scrape time (at most every ``max_age_s``) from the store's SQLite files, read-only:
    they are in WAL mode, so the read never holds up the worker's writes, and it costs the
    worker nothing per record. A key the logic discarded counts until Bytewax collects its row.
    """

    QUERY = "SELECT step_id, COUNT(DISTINCT state_key) FROM snaps WHERE step_id LIKE '%stateful_batch' GROUP BY step_id"

    def __init__(self, directory: Path, dataflow_id: str, max_age_s: float = 15.0) -> None:
        self.directory, self.dataflow_id, self.max_age_s = directory, dataflow_id, max_age_s
        self._lock = threading.Lock()
        self._taken = float("-inf")
        self._counts: dict[tuple[str, str], int] = {}

    def _label(self, step_id: str) -> tuple[str, str]:
        """(flow, step) of a step id: ``orders-inventory-payments.orders.saga.stateful_batch`` -> (orders, saga)."""
        parts = step_id.split(".")
        if parts[0] == self.dataflow_id and len(parts) > 2 and "-" in self.dataflow_id:
            parts = parts[1:]
        return parts[0], parts[1] if len(parts) > 1 else ""

    def _count(self) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        for path in sorted(self.directory.glob("part-*.sqlite3")):
            try:
                db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
                try:
                    rows = db.execute(self.QUERY).fetchall()
                finally:
                    db.close()
            except sqlite3.Error as err:  # a store being created, or locked past the timeout: next scrape
                log.warning("state keys of %s not counted: %s", path.name, err)
                continue
            for step_id, keys in rows:
                label = self._label(step_id)
                counts[label] = counts.get(label, 0) + int(keys)
        return counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            if time.monotonic() - self._taken > self.max_age_s:
                self._counts, self._taken = self._count(), time.monotonic()
            counts = dict(self._counts)
        family = GaugeMetricFamily(
            "shop_flow_state_keys",
            "Keys a stateful step holds, as of the recovery store's last snapshot of each",
            labels=["flow", "step"],
        )
        for (flow, step), keys in sorted(counts.items()):
            family.add_metric([flow, step], float(keys))
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("shop_flow_state_keys", "", labels=["flow", "step"])


def serve(settings: Settings, recovery: Path, dataflow_id: str) -> int | None:
    """Turn on the metrics of this flow process on ``settings.metrics_port``; the port, or None when off or taken.

    prometheus-client's server answers ``/metrics`` there, on a thread of its own; with
    ``SHOP_FLOW_BYTEWAX_METRICS`` Bytewax's dataflow API server does (it binds every interface,
    and writes ``dataflow.json`` under the stack folder), with Bytewax's own metrics first. A port
    already taken costs the flow nothing but its metrics: it is said once and the flow runs on.
    """
    port = settings.metrics_port if settings.metrics_enabled else 0
    if not port:
        return None
    disable_created_metrics()  # type: ignore[no-untyped-call]  # half the series, none of them used
    REGISTRY.register(StateKeys(recovery, dataflow_id))
    REGISTRY.register(StepRecords())
    if not settings.flow_bytewax_metrics:
        try:
            start_http_server(port, addr=settings.host)
        except OSError as err:
            log.warning("no metrics: port %s is taken (%s); see SHOP_METRICS_PORTS", port, err.strerror)
            return None
        return port
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))  # noqa: S104 - where Bytewax's server will listen
        except OSError as err:
            log.warning("no metrics: port %s is taken (%s); see SHOP_METRICS_PORTS", port, err.strerror)
            return None
    cache = settings.stack_dir / "run" / f"dataflow-{dataflow_id}"
    cache.mkdir(parents=True, exist_ok=True)
    os.environ["BYTEWAX_DATAFLOW_API_ENABLED"] = "1"
    os.environ["BYTEWAX_DATAFLOW_API_PORT"] = str(port)
    os.environ["BYTEWAX_DATAFLOW_API_CACHE_PATH"] = str(cache)
    return port
