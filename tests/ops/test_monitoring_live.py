"""The real Prometheus and Alertmanager on a running system (tests/support/live.py's ``live_system``).

Every process of the run is scraped; every dashboard panel's PromQL parses and names only
metrics the processes export (or the rules record); the rules load and evaluate without
error against the real series; and a Prometheus and Alertmanager that are down cost the
system nothing: orders are still taken and settled, every /metrics still answers.
"""

from __future__ import annotations

import time

import httpx
import pytest

from ops.supervisor import read_status
from tests.support.dashboards import exported_names, metric_names, panel_queries, promql, recording_rules
from tests.support.live import LiveSystem
from topology.processes import metrics_targets

pytestmark = pytest.mark.stack
#: Series Prometheus makes itself: a target's health, and the alerts its rules hold.
PROMETHEUS_OWN = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE"})


def exported(live: LiveSystem) -> set[str]:
    """Every metric name the run's processes export, from their samples and their HELP/TYPE lines."""
    system = live.system_label
    series = httpx.get(
        f"{live.prometheus_url}/api/v1/label/__name__/values",
        params={"match[]": f'{{system="{system}"}}'},
        timeout=10,
    ).json()["data"]
    metadata = httpx.get(f"{live.prometheus_url}/api/v1/metadata", timeout=10).json()["data"]
    return exported_names(set(series), metadata) - PROMETHEUS_OWN


def test_every_process_of_the_run_is_scraped(live_system: LiveSystem) -> None:
    system = live_system.system_label
    health = {row["metric"]["job"]: row["value"][1] for row in live_system.query(f'up{{system="{system}"}}')}
    assert health == {job: "1" for job, _ in metrics_targets(live_system.settings)}


def test_the_load_is_counted(live_system: LiveSystem) -> None:
    system = live_system.system_label
    placed = live_system.query(f'sum(shop_orders_placed_total{{system="{system}"}})')
    assert float(placed[0]["value"][1]) >= len(live_system.orders)
    routes = live_system.query(f'sum by (status) (shop_http_requests_total{{system="{system}", route="/v1/orders"}})')
    assert {"202", "422"} <= {row["metric"]["status"] for row in routes}


def test_every_recording_rule_names_only_exported_metrics(live_system: LiveSystem) -> None:
    names = exported(live_system)
    missing = {record: sorted(metric_names(expr) - names) for record, expr in recording_rules().items()}
    assert {record: gone for record, gone in missing.items() if gone} == {}


def test_every_dashboard_query_parses_and_names_only_exported_metrics(live_system: LiveSystem) -> None:
    names = exported(live_system) | set(recording_rules()) | PROMETHEUS_OWN
    refused, unknown, answered = [], [], 0
    for query in panel_queries():
        expr = promql(query.expr, live_system.system_label, rate_interval="1m")
        answer = httpx.get(f"{live_system.prometheus_url}/api/v1/query", params={"query": expr}, timeout=10).json()
        if answer["status"] != "success":
            refused.append(f"{query.dashboard} / {query.panel}: {answer.get('error')}")
        gone = metric_names(expr) - names
        if gone:
            unknown.append(f"{query.dashboard} / {query.panel}: {sorted(gone)}")
        answered += bool(answer.get("data", {}).get("result"))
    assert (refused, unknown) == ([], []), "queries Prometheus does not parse; queries naming a metric none exports"
    assert answered >= len(panel_queries()) // 2, "most panels show data after the load"


def test_the_rules_load_and_evaluate_against_the_real_series(live_system: LiveSystem) -> None:
    groups = httpx.get(f"{live_system.prometheus_url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) >= len(recording_rules()) + 10
    assert [(rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"] == []
    alertmanagers = httpx.get(f"{live_system.prometheus_url}/api/v1/alertmanagers", timeout=10).json()["data"]
    assert [a["url"] for a in alertmanagers["activeAlertmanagers"]] == [f"{live_system.alertmanager_url}/api/v2/alerts"]


def test_prometheus_and_alertmanager_down_cost_the_system_nothing(live_system: LiveSystem) -> None:
    system = live_system.system_label
    before = time.time()
    placed_before = float(live_system.query(f'sum(shop_orders_placed_total{{system="{system}"}})')[0]["value"][1])
    processes = {status.name: status for status in read_status(live_system.settings)}
    assert processes and {status.state for status in processes.values()} == {"running"}
    monitoring = live_system.monitoring()
    assert {row.name: row.state for row in monitoring.down()} == {"alertmanager": "stopped", "prometheus": "stopped"}
    try:
        customer = live_system.bearer("live-carol", "customer")
        order_id = live_system.place(customer, "tok_visa")
        assert live_system.settle(customer, order_id) == "confirmed"
        for job, port in metrics_targets(live_system.settings):
            answer = httpx.get(f"http://{live_system.settings.host}:{port}/metrics", timeout=10)
            assert answer.status_code == 200, job
        after = {status.name: status for status in read_status(live_system.settings)}
        assert {name: (s.state, s.pid, s.restarts) for name, s in after.items()} == {
            name: ("running", s.pid, s.restarts) for name, s in processes.items()
        }, "no process stopped, restarted or changed"
    finally:
        assert all(row.ok for row in monitoring.up()), "the private Prometheus comes back"
    kept = live_system.query(f'sum(shop_orders_placed_total{{system="{system}"}})', at=before)
    assert float(kept[0]["value"][1]) == placed_before, "what was scraped before the stop is kept"
