"""The read replica's lag as Prometheus gauges, sampled when the ingress's metrics are scraped.

gunicorn's master serves ``/metrics`` (``ingress/metrics.py``); this collector is on its
registry, so no worker and no request ever waits for it. A scrape reads the sample taken
at most ``max_age_s`` ago; an older one is taken again on a thread of its own, on a
connection of its own opened for the sample (none is held across gunicorn's forks), and
the scrape waits at most ``wait_s`` for it: a replica that does not answer shows as
``shop_read_replica_up 0`` and costs the scrape that much at most.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ingress.readmodel import Lag, measure_lag
from topology.settings import Settings

log = logging.getLogger(__name__)


def sample_replica(settings: Settings) -> Lag:
    """The replica's lag, on a short-lived connection with short timeouts."""
    with psycopg.connect(
        settings.pg_read_url, connect_timeout=2, autocommit=True, options="-c statement_timeout=2000"
    ) as conn:
        return measure_lag(conn)


class ReplicaLag(Collector):
    """``shop_read_replica_lag_bytes``, ``shop_read_replica_lag_seconds`` and ``shop_read_replica_up``."""

    def __init__(
        self,
        settings: Settings,
        max_age_s: float = 5.0,
        wait_s: float = 2.0,
        sample: Callable[[Settings], Lag] = sample_replica,
    ) -> None:
        self.settings, self.max_age_s, self.wait_s, self._sample = settings, max_age_s, wait_s, sample
        self._lock = threading.Lock()
        self._lag: Lag | None = None
        self._taken = float("-inf")
        self._refresh: threading.Thread | None = None

    def _take(self) -> None:
        try:
            lag: Lag | None = self._sample(self.settings)
        except Exception as err:  # noqa: BLE001 - telemetry: a replica away is shop_read_replica_up 0
            log.warning("replica lag not sampled: %s", str(err).strip().splitlines()[0] if str(err) else err)
            lag = None
        with self._lock:
            self._lag, self._taken = lag, time.monotonic()

    def current(self) -> Lag | None:
        """The latest sample (taken again first when it is older than ``max_age_s``); None when the replica is away."""
        with self._lock:
            stale = time.monotonic() - self._taken > self.max_age_s
            if stale and (self._refresh is None or not self._refresh.is_alive()):
                self._refresh = threading.Thread(target=self._take, name="replica-lag-sample", daemon=True)
                self._refresh.start()
            refresh = self._refresh if stale else None
        if refresh is not None:
            refresh.join(self.wait_s)
        with self._lock:
            return self._lag

    def collect(self) -> Iterator[GaugeMetricFamily]:
        lag = self.current()
        up = GaugeMetricFamily("shop_read_replica_up", "1 when the read replica answered the last lag sample, else 0")
        up.add_metric([], 0.0 if lag is None else 1.0)
        yield up
        if lag is None:
            return
        lag_bytes = GaugeMetricFamily("shop_read_replica_lag_bytes", "WAL received by the read replica, not replayed")
        lag_bytes.add_metric([], float(lag.bytes))
        yield lag_bytes
        lag_seconds = GaugeMetricFamily(
            "shop_read_replica_lag_seconds", "Age of the last transaction the replica replayed, when it is behind"
        )
        lag_seconds.add_metric([], lag.seconds)
        yield lag_seconds

    def describe(self) -> Iterator[GaugeMetricFamily]:
        for name in ("shop_read_replica_up", "shop_read_replica_lag_bytes", "shop_read_replica_lag_seconds"):
            yield GaugeMetricFamily(name, "")
