"""Prometheus metrics of the sink processes (served on the sink's metrics port, ``SHOP_METRICS_PORT``)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram
from quixstreams.sinks import SinkBatch

EVENTS = Counter(
    "shop_sink_events_total",
    "Records a sink handled, by outcome: written (or already there), skipped (not kept by this store), dead",
    ["sink", "outcome"],
)
BATCH_SECONDS = Histogram(
    "shop_sink_batch_seconds",
    "Time to write one checkpoint's batches into the store (its count: the batches written)",
    ["sink"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BACKPRESSURE = Counter("shop_sink_backpressure_total", "Batches put back because the store was unavailable", ["sink"])
ERRORS = Counter(
    "shop_sink_errors_total", "Writes that failed with an error that stops the sink, by its kind", ["sink", "kind"]
)
LAST_WRITE = Gauge("shop_sink_last_write_timestamp_seconds", "When the sink last wrote a batch (Unix time)", ["sink"])
LAST_RECORD = Gauge(
    "shop_sink_last_record_timestamp_seconds",
    "Kafka timestamp of the newest record the sink wrote, per topic (time() minus it: the age of what it has)",
    ["sink", "topic"],
)
REPLICA_LAG_BYTES = Gauge("shop_pg_replica_lag_bytes", "WAL the read replica has not replayed yet", ["replica"])
REPLICA_LAG_SECONDS = Gauge("shop_pg_replica_lag_seconds", "The read replica's replay lag", ["replica"])


def written(sink: str, batches: Iterable[SinkBatch]) -> None:
    """After a write: its time, and the timestamp of the last record of each topic (once per batch, not per record)."""
    LAST_WRITE.labels(sink).set(time.time())
    newest: dict[str, int] = {}
    for batch in batches:
        last = batch._buffer[-1] if batch.size else None
        if last is not None and last.timestamp > newest.get(batch.topic, -1):
            newest[batch.topic] = last.timestamp
    for topic, timestamp_ms in newest.items():
        LAST_RECORD.labels(sink, topic).set(timestamp_ms / 1000)
