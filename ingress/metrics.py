"""Prometheus metrics of the ingress, counted across gunicorn workers (prometheus-client multiprocess mode).

gunicorn's config points ``PROMETHEUS_MULTIPROC_DIR`` at an empty folder before any worker
starts; each worker writes its samples there. ``serve`` answers ``/metrics`` on the operator
port (``SHOP_INGRESS_METRICS_PORT``) from gunicorn's master, merging every worker's samples;
the API port never serves them. Without the variable (tests in one process) ``scrape``
reads the default registry. The middleware that counts requests is ``middleware.Measure``.
"""

from __future__ import annotations

import os
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

from ingress.replica_lag import ReplicaLag
from topology.settings import Settings

REQUESTS = Counter("shop_http_requests_total", "HTTP requests answered", ["route", "method", "status"])
LATENCY = Histogram(
    "shop_http_request_seconds",
    "Time to answer an HTTP request",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
UNCHECKED = Counter(
    "shop_ratelimit_unchecked_total",
    "Requests let through unchecked by rate limits while Redis did not answer (SHOP_RATE_LIMIT_REDIS_DOWN=open)",
)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The exposition format ``scrape`` answers in.
CONTENT_TYPE = CONTENT_TYPE_LATEST


def _registry() -> Any:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def scrape() -> bytes:
    """Every sample, of every worker, in the text exposition format."""
    return generate_latest(_registry())


def serve(host: str, port: int, settings: Settings | None = None) -> WSGIServer:
    """Answer ``/metrics`` (every worker's samples) on ``host:port`` from a daemon thread; OSError if it is taken.

    With ``settings``, the read replica's lag too, sampled on scrape (``ingress/replica_lag.py``).
    """
    registry = _registry()
    if settings is not None:
        registry.register(ReplicaLag(settings))
    server, _ = start_http_server(port, addr=host, registry=registry)
    return server
