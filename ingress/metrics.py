"""Prometheus metrics of the ingress, counted across gunicorn workers (prometheus-client multiprocess mode).

gunicorn's config points ``PROMETHEUS_MULTIPROC_DIR`` at an empty folder before any worker
starts; each worker writes its samples there and ``scrape`` merges them. Without the
variable (tests in one process) the default registry is served. The middleware that
counts requests is ``middleware.Measure``.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("shop_http_requests_total", "HTTP requests answered", ["route", "method", "status"])
LATENCY = Histogram(
    "shop_http_request_seconds",
    "Time to answer an HTTP request",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The exposition format ``scrape`` answers in.
CONTENT_TYPE = CONTENT_TYPE_LATEST


def scrape() -> bytes:
    """Every sample, of every worker, in the text exposition format."""
    registry: Any = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)
