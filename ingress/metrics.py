"""Prometheus metrics of the ingress, counted across gunicorn workers (prometheus-client multiprocess mode).

gunicorn's config points ``PROMETHEUS_MULTIPROC_DIR`` at an empty folder before any worker
starts; each worker writes its samples there and ``/metrics`` merges them. Without the
variable (tests in one process) the default registry is served.
"""

from __future__ import annotations

import os
import time
from typing import Any

import falcon
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


class Measure:
    """Counts and times every request; the labelled series are looked up once each (``labels`` takes a lock)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, int], Any] = {}
        self._times: dict[tuple[str, str], Any] = {}

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: object, ok: bool) -> None:
        route = req.uri_template or "unmatched"
        method = req.method if req.method in METHODS else "OTHER"  # clients choose the method: bound the series
        key = (route, method, resp.status_code)
        count = self._counts.get(key)
        if count is None:
            count = self._counts.setdefault(key, REQUESTS.labels(*key))
        count.inc()
        started = getattr(req.context, "started", None)
        if started is not None:
            timer = self._times.get(key[:2])
            if timer is None:
                timer = self._times.setdefault(key[:2], LATENCY.labels(route, method))
            timer.observe(time.perf_counter() - started)


class MetricsResource:
    public = True

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        registry: Any = REGISTRY
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        resp.content_type = CONTENT_TYPE_LATEST
        resp.data = generate_latest(registry)
