"""The stack's own Prometheus (a private one): what ``stack up`` generates is reloaded, targets files are picked up."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from ops import scrape
from ops.exceptions import StackError
from ops.stack.launcher import Stack
from ops.stack.monitoring import Prometheus
from tests.support.processes import free_port
from tests.support.waiting import eventually
from topology.settings import Settings

pytestmark = pytest.mark.stack


def test_stack_up_reloads_its_config_and_a_runs_targets_are_scraped(private_settings: Settings) -> None:
    first = private_settings.model_copy(update={"prometheus_scrape_interval_s": 1})
    prometheus = f"http://{first.host}:{first.prometheus_port}"
    registry = CollectorRegistry()
    Gauge("shop_probe_ready", "a process of a fake run", registry=registry).set(7)
    port = free_port()
    server, thread = start_http_server(port, addr=first.host, registry=registry)
    try:
        [row] = Stack(first, only=("prometheus",)).up()
        assert row.state == "started", row.error
        scrape.register(first, [("probe", port)])

        def scraped() -> list[dict[str, Any]]:
            answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": "shop_probe_ready"}, timeout=5).json()
            return list(answer["data"]["result"])

        [sample] = eventually(scraped, 30, "the targets file was never scraped")
        assert sample["metric"] == {
            "__name__": "shop_probe_ready",
            "job": "probe",
            "system": "shopstream",
            "instance": f"127.0.0.1:{port}",
        }
        assert sample["value"][1] == "7"

        second = first.model_copy(update={"prometheus_scrape_interval_s": 3})
        [row] = Stack(second, only=("prometheus",)).up()
        assert row.state == "up", row.error
        config = httpx.get(f"{prometheus}/api/v1/status/config", timeout=5).json()["data"]["yaml"]
        assert "scrape_interval: 3s" in config, "stack up rewrote prometheus.yml and the running server reloaded it"

        scrape.config_file(second).write_text("scrape_configs: [{job_name: a}, {job_name: a}]\n")
        with pytest.raises(StackError, match="refused its new configuration") as refused:
            Prometheus(second).reload()
        assert "multiple scrape configs" in str(refused.value), "the error names what is wrong"
        assert Prometheus(second).healthy(), "it keeps the previous configuration"
        [row] = Stack(second, only=("prometheus",)).up()
        assert row.state == "up", row.error
    finally:
        Stack(first, only=("prometheus",)).down()
        server.shutdown()
        thread.join(5)
