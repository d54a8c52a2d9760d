"""Every metric the system's processes register follows the Prometheus naming conventions.

``shop_`` prefix, ``_total`` on counters and only there, histograms in base units
(``_seconds``, ``_bytes``), no other units (milliseconds, minutes, kilobytes), a help text,
and no label whose values are ids (an order, a customer, a SKU: one series each).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, Metric

from flows.metrics import StateKeys
from ingress.readmodel import Lag
from ingress.replica_lag import ReplicaLag
from ops.lag_metrics import LagCollector
from ops.supervisor import Entry, Supervisor
from ops.topology_admin import LagRow
from topology.settings import Settings

#: Every module that registers metrics in the default registry of its process.
MODULES = ("flows.metrics", "sinks.metrics", "ingress.metrics", "ingress.readmodel", "topology.logs")
NAME = re.compile(r"^shop_[a-z][a-z0-9]*(_[a-z0-9]+)*$")
NOT_BASE_UNITS = re.compile(
    r"_(milliseconds|ms|microseconds|minutes|hours|days|kb|mb|kilobytes|megabytes|percent)(_|$)"
)
ID_LABELS = {
    "id",
    "order_id",
    "customer_id",
    "user_id",
    "sku",
    "payment_id",
    "notification_id",
    "correlation_id",
    "trace_id",
    "email",
    "key",
    "offset",
}
UNITS = ("_seconds", "_bytes")


def ours(families: Iterable[Metric]) -> list[Metric]:
    """The system's own families: the client library's (process_, python_) and Bytewax's follow their own."""
    return [f for f in families if not f.name.startswith(("process_", "python_", "bytewax_"))]


def families() -> list[Metric]:
    for module in MODULES:
        importlib.import_module(module)
    found = ours(REGISTRY.collect())
    supervisor = Supervisor([Entry("web", "true")], Settings(supervisor_metrics_port=0), Path.cwd())
    lag_row = LagRow("shopstream.flow.orders", "shop.order.commands", 0, 5, 7)
    collectors = [
        supervisor.registry,
        LagCollector(Settings(), sample=lambda _settings: [lag_row]),
        ReplicaLag(Settings(), sample=lambda _settings: Lag(10, 0.5)),
        StateKeys(Path("/nonexistent"), "orders"),
    ]
    for collector in collectors:
        found += ours(collector.collect())
    return found


FAMILIES = families()
#: The label names each registered metric declares, whether it has samples yet or not.
LABELS = {
    name: set(getattr(collector, "_labelnames", ()))
    for collector, names in REGISTRY._collector_to_names.items()
    for name in names
}
LABELS |= {name.removesuffix("_total"): labels for name, labels in LABELS.items()}


def test_the_families_are_found() -> None:
    names = {f.name for f in FAMILIES}
    expected = {"shop_flow_epochs", "shop_sink_events", "shop_http_requests", "shop_kafka_consumer_lag"}
    assert expected <= names
    assert "shop_read_replica_lag_bytes" in names and "shop_process_restarts" in names


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_a_metric_follows_the_conventions(family: Metric) -> None:
    assert NAME.match(family.name), f"{family.name}: shop_ and snake case"
    assert not NOT_BASE_UNITS.search(family.name), f"{family.name}: base units only (seconds, bytes)"
    assert family.documentation, f"{family.name} says what it counts"
    if family.type == "counter":
        samples = {s.name for s in family.samples}
        assert all(s.endswith(("_total", "_created")) for s in samples), f"{family.name}: a counter ends in _total"
    else:
        assert not family.name.endswith("_total"), f"{family.name}: only counters end in _total"
    if family.type == "histogram":
        assert family.name.endswith(UNITS), f"{family.name}: a histogram names its base unit"
    labels = {label for sample in family.samples for label in sample.labels} | LABELS.get(family.name, set())
    assert not labels & ID_LABELS, f"{family.name}: no ids in labels ({labels & ID_LABELS})"
