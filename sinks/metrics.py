"""Prometheus metrics of the sink processes (served when ``SHOP_METRICS_PORT`` is set)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "shop_sink_events_total",
    "Records a sink handled, by outcome: written (or already there), skipped (not kept by this store), dead",
    ["sink", "outcome"],
)
BATCH_SECONDS = Histogram(
    "shop_sink_batch_seconds",
    "Time to write one batch (one topic partition) into the store",
    ["sink"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BACKPRESSURE = Counter("shop_sink_backpressure_total", "Batches put back because the store was unavailable", ["sink"])
REPLICA_LAG_BYTES = Gauge("shop_pg_replica_lag_bytes", "WAL the read replica has not replayed yet", ["replica"])
REPLICA_LAG_SECONDS = Gauge("shop_pg_replica_lag_seconds", "The read replica's replay lag", ["replica"])
