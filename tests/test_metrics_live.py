"""Every process of a running system serves its metrics on its declared port, with what a short load did.

The system is ``live_system`` (tests/support/live.py: ``shopstream run`` under a private
prefix on free ports, after a short load through the front door). Each process's
``/metrics`` is read straight from its port, as ``topology.processes.metrics_targets``
names it, and parsed as Prometheus parses it.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.live import LiveSystem
from topology.processes import PROCESSES, metrics_targets

pytestmark = pytest.mark.stack
Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(live: LiveSystem, port: int) -> Samples:
    """Every sample on the port, by sample name; a page Prometheus could not parse fails here."""
    text = httpx.get(f"http://{live.settings.host}:{port}/metrics", timeout=10).text
    samples: Samples = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name].append((sample.labels, sample.value))
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(v for have, v in samples.get(name, []) if all(have.get(k) == want for k, want in labels.items()))


@pytest.fixture(scope="module")
def pages(live_system: LiveSystem) -> dict[str, Samples]:
    return {name: scrape(live_system, port) for name, port in metrics_targets(live_system.settings)}


def test_every_process_answers_on_its_declared_port(live_system: LiveSystem, pages: dict[str, Samples]) -> None:
    assert set(pages) == {name for name, _ in metrics_targets(live_system.settings)}
    assert {"supervisor", "ingress", "saga", "services", "sink-postgres"} <= set(pages)


def test_the_saga_counts_its_steps_epochs_business_and_gateway_calls(
    live_system: LiveSystem, pages: dict[str, Samples]
) -> None:
    saga = pages["saga"]
    for flow in ("orders", "inventory", "payments"):
        assert total(saga, "shop_flow_epochs_total", flow=flow) > 0, f"{flow} closed no epoch"
        for step, direction in (("in", "out"), ("decode", "out"), ("handle", "out"), ("out", "in")):
            count = total(saga, "shop_flow_step_records_total", flow=flow, step=step, direction=direction)
            assert count > 0, f"{flow}'s {step} step counted no record {direction}"
    confirmed = sum(1 for status in live_system.orders.values() if status == "confirmed")
    assert total(saga, "shop_orders_placed_total") >= len(live_system.orders)
    assert total(saga, "shop_orders_confirmed_total") >= confirmed > 0
    assert total(saga, "shop_revenue_minor_units_total", currency="EUR") >= confirmed * 1250
    assert total(saga, "shop_orders_cancelled_total", reason="payment_declined") > 0
    assert total(saga, "shop_payment_declines_total", reason="card_declined") > 0
    assert total(saga, "shop_gateway_calls_total", operation="authorize", outcome="approved") >= confirmed
    assert total(saga, "shop_gateway_call_seconds_count", operation="authorize") > 0
    # Counted from the recovery store at most every 15 s: read again until its count has caught up.
    port = dict(metrics_targets(live_system.settings))["saga"]
    deadline = time.monotonic() + 40
    while total(page := scrape(live_system, port), "shop_flow_state_keys", flow="orders", step="saga") < len(
        live_system.orders
    ):
        assert time.monotonic() < deadline, page.get("shop_flow_state_keys")
        time.sleep(1)
    assert total(saga, "shop_flow_epoch_flush_seconds_count", flow="orders") > 0


def test_the_other_flows_count_their_epochs_and_records(pages: dict[str, Samples]) -> None:
    services = pages["services"]
    for flow in ("users", "catalog", "notifications"):
        assert total(services, "shop_flow_epochs_total", flow=flow) > 0, f"{flow} closed no epoch"
    catalog = total(services, "shop_flow_step_records_total", flow="catalog", step="decode", direction="out")
    assert catalog > 0, "the product the load upserted went through the catalog flow"


def once_written(live: LiveSystem, sink: str, port: int, timeout_s: float = 60) -> Samples:
    """The sink's page once it counts a record written: a sink writes at its checkpoints, after the load."""
    deadline = time.monotonic() + timeout_s
    while total(page := scrape(live, port), "shop_sink_events_total", sink=sink, outcome="written") == 0:
        assert time.monotonic() < deadline, f"{sink} wrote nothing: {page.get('shop_sink_events_total')}"
        time.sleep(1)
    return page


def test_every_sink_counts_what_it_wrote_and_when(live_system: LiveSystem) -> None:
    ports = dict(metrics_targets(live_system.settings))
    for process in (p for p in PROCESSES if p.kind == "sink"):
        name = process.name
        page = once_written(live_system, name, ports[f"sink-{name}"])
        assert total(page, "shop_sink_batch_seconds_count", sink=name) > 0, name
        assert total(page, "shop_sink_last_write_timestamp_seconds", sink=name) > 0, name
        assert page.get("shop_sink_last_record_timestamp_seconds"), name


def test_the_ingress_counts_requests_and_samples_the_replica_lag(pages: dict[str, Samples]) -> None:
    ingress = pages["ingress"]
    assert total(ingress, "shop_http_requests_total", route="/v1/orders", method="POST", status="202") > 0
    assert total(ingress, "shop_http_requests_total", status="422") > 0
    assert total(ingress, "shop_read_replica_up") == 1
    assert ingress.get("shop_read_replica_lag_bytes"), "sampled on scrape, without any test calling replica_lag()"


def test_the_supervisor_serves_every_process_up_and_every_group_lag(
    live_system: LiveSystem, pages: dict[str, Samples]
) -> None:
    supervisor = pages["supervisor"]
    up = {labels["process"]: v for labels, v in supervisor["shop_process_up"]}
    assert up and set(up.values()) == {1.0}, up
    assert total(supervisor, "shop_kafka_lag_up") == 1
    groups = {labels["group"] for labels, _ in supervisor["shop_kafka_consumer_lag"]}
    prefix = live_system.settings.topic_prefix
    assert groups == {p.group_for(prefix) for p in PROCESSES if p.group}
    committed = supervisor["shop_kafka_consumer_committed_offset"]
    assert any(labels["group"] == f"{prefix}shopstream.flow.orders" and v > 0 for labels, v in committed)


def test_scrapes_while_orders_flow_are_answered_and_the_orders_settle(live_system: LiveSystem) -> None:
    """A scrape never holds a process up: pages keep coming while the orders go through every process."""
    host = live_system.settings.host
    ports = [port for _, port in metrics_targets(live_system.settings)]
    answered: list[int] = []
    stop = threading.Event()

    def scrape_all() -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                answered.extend(client.get(f"http://{host}:{p}/metrics").status_code for p in ports)

    scraper = threading.Thread(target=scrape_all, daemon=True)
    scraper.start()
    try:
        customer = live_system.bearer("live-scraped", "customer")
        placed = [live_system.place(customer, "tok_visa") for _ in range(3)]
        assert [live_system.settle(customer, order_id) for order_id in placed] == ["confirmed"] * 3
    finally:
        stop.set()
        scraper.join(30)
    assert len(answered) >= len(ports) and set(answered) == {200}
