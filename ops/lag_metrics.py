"""Consumer lag per group and partition as Prometheus gauges, from ``shopstream topology lag``'s own code.

The supervisor registers a ``LagCollector``: no process of its own, no polling while
nobody scrapes. A scrape reads the sample taken at most ``max_age_s`` ago; an older one
is refreshed on a thread of its own, and the scrape waits at most ``wait_s`` for it, so a
broker that does not answer slows no scrape past that and never blocks the supervisor
(whose loop does not take part). One refresh runs at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ops.topology_admin import LagRow, lag
from topology.settings import Settings

log = logging.getLogger(__name__)


class LagCollector(Collector):
    """``shop_kafka_consumer_lag`` and its parts for every declared group, sampled on scrape."""

    def __init__(
        self,
        settings: Settings,
        max_age_s: float = 5.0,
        wait_s: float = 2.0,
        sample: Callable[[Settings], list[LagRow]] = lag,
    ) -> None:
        self.settings, self.max_age_s, self.wait_s, self._sample = settings, max_age_s, wait_s, sample
        self._lock = threading.Lock()
        self._rows: list[LagRow] = []
        self._ok = False
        self._taken = float("-inf")
        self._refresh: threading.Thread | None = None

    def _take(self) -> None:
        try:
            rows, ok = self._sample(self.settings), True
        except Exception as err:  # noqa: BLE001 - telemetry: a broker away is a 0 on shop_kafka_lag_up, not a crash
            log.warning("consumer lag not sampled: %s", str(err).splitlines()[0] if str(err) else type(err).__name__)
            rows, ok = [], False
        with self._lock:
            self._rows, self._ok, self._taken = rows, ok, time.monotonic()

    def _current(self) -> tuple[list[LagRow], bool]:
        with self._lock:
            stale = time.monotonic() - self._taken > self.max_age_s
            if stale and (self._refresh is None or not self._refresh.is_alive()):
                self._refresh = threading.Thread(target=self._take, name="lag-sample", daemon=True)
                self._refresh.start()
            refresh = self._refresh if stale else None
        if refresh is not None:
            refresh.join(self.wait_s)
        with self._lock:
            return list(self._rows), self._ok

    def collect(self) -> Iterator[GaugeMetricFamily]:
        rows, ok = self._current()
        up = GaugeMetricFamily("shop_kafka_lag_up", "1 when the last sample of consumer lag answered, else 0")
        up.add_metric([], 1.0 if ok else 0.0)
        yield up
        lag_family = GaugeMetricFamily(
            "shop_kafka_consumer_lag",
            "Records of a partition the group has not committed yet (log end offset - committed offset)",
            labels=["group", "topic", "partition"],
        )
        committed = GaugeMetricFamily(
            "shop_kafka_consumer_committed_offset",
            "The group's committed offset of a partition (absent before its first commit)",
            labels=["group", "topic", "partition"],
        )
        end = GaugeMetricFamily(
            "shop_kafka_log_end_offset",
            "The partition's log end offset (high watermark)",
            labels=["topic", "partition"],
        )
        ends: dict[tuple[str, str], int] = {}
        for row in rows:
            labels = [row.group, row.topic, str(row.partition)]
            lag_family.add_metric(labels, float(row.lag))
            if row.committed is not None:
                committed.add_metric(labels, float(row.committed))
            ends[row.topic, str(row.partition)] = row.end
        for (topic, partition), offset in sorted(ends.items()):
            end.add_metric([topic, partition], float(offset))
        yield lag_family
        yield committed
        yield end

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The families without a sample (registration must not call the broker)."""
        yield GaugeMetricFamily("shop_kafka_lag_up", "")
        for name in ("shop_kafka_consumer_lag", "shop_kafka_consumer_committed_offset", "shop_kafka_log_end_offset"):
            yield GaugeMetricFamily(name, "")
