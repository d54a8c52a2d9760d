"""The Grafana dashboards and provisioning files of ops/grafana, checked without a server.

Their queries are run against the real Prometheus in tests/ops/test_monitoring_live.py.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
import yaml

from tests.support.dashboards import DASHBOARDS_DIR, dashboards, metric_names, panel_queries, promql
from topology.settings import PROJECT_ROOT

PROVISIONING = PROJECT_ROOT / "ops" / "grafana" / "provisioning"


def test_the_five_dashboards_are_there_with_unique_uids() -> None:
    boards = dashboards()
    assert set(boards) == {
        "system-overview.json",
        "order-funnel.json",
        "kafka-lag.json",
        "stores-and-sinks.json",
        "ingress-red.json",
    }
    uids = Counter(board["uid"] for board in boards.values())
    assert max(uids.values()) == 1


def test_every_panel_queries_the_provisioned_prometheus_for_one_system() -> None:
    (source,) = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())["datasources"]
    for name, board in dashboards().items():
        (variable,) = board["templating"]["list"]  # type: ignore[index]
        assert variable["name"] == "system", name
        ids = [panel["id"] for panel in board["panels"]]  # type: ignore[attr-defined]
        assert len(ids) == len(set(ids)), f"{name}: panel ids repeat"
        for panel in board["panels"]:  # type: ignore[attr-defined]
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == source["uid"], f"{name}: {panel['title']}"
            assert panel["targets"], f"{name}: {panel['title']} has no query"
    queries = panel_queries()
    assert len(queries) >= 40
    unscoped = [(q.panel, name) for q in queries for name in unscoped_selectors(q.expr)]
    assert unscoped == [], "every selector of every query picks one system"


def unscoped_selectors(expr: str) -> list[str]:
    """The metric names ``expr`` selects without ``system="$system"``."""
    found = []
    for name in metric_names(expr):
        for use in re.finditer(rf"(?<![A-Za-z0-9_:]){re.escape(name)}\s*(\{{[^}}]*\}})?", expr):
            if 'system="$system"' not in (use.group(1) or ""):
                found.append(name)
    return found


def test_a_selector_without_the_system_is_found() -> None:
    assert unscoped_selectors('a{system="$system"} / b{job="x"}') == ["b"]


def test_the_dashboards_provider_points_at_the_dashboards_folder() -> None:
    (provider,) = yaml.safe_load((PROVISIONING / "dashboards" / "shopstream.yml").read_text())["providers"]
    assert PROJECT_ROOT / provider["options"]["path"] == DASHBOARDS_DIR


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (system, route) (rate(shop_http_requests_total{status=~"5.."}[5m]))', {"shop_http_requests_total"}),
        ("histogram_quantile(0.99, sum by (le) (rate(x_seconds_bucket[5m])))", {"x_seconds_bucket"}),
        ("a / on (job) group_left (name) b", {"a", "b"}),
        (
            'time() - max by (sink) (shop_sink_last_record_timestamp_seconds{system="$system"})',
            {"shop_sink_last_record_timestamp_seconds"},
        ),
        ("up == 0 and delta(group:shop_kafka_consumer_lag:sum[5m]) > 0", {"up", "group:shop_kafka_consumer_lag:sum"}),
        ('label_replace(x == 0, "job", "$1", "process", "(.*)")', {"x"}),
        ("rate(x_total[5m] offset 1h) * 1e3 > bool 2", {"x_total"}),
        ('sum(rate(y_total{a="by (b)", c=~"[0-9]+"}[1m])) by (d)', {"y_total"}),
    ],
)
def test_metric_names_finds_the_selected_series_only(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_grafana_variables_are_filled_in() -> None:
    expr = 'sum(rate(shop_orders_placed_total{system="$system"}[$__rate_interval]))'
    assert promql(expr, "t123", "1m") == 'sum(rate(shop_orders_placed_total{system="t123"}[1m]))'
