"""The ingress as production runs it: gunicorn with several workers, metrics counted across them.

The metrics are served on the operator port by gunicorn's master, never on the API port.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import httpx
import pytest

from tests.support.processes import BIN, free_port, spawn, start_gunicorn, stop_all
from topology.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.stack
APP = "ingress.wsgi:app_from_env()"


def test_metrics_count_requests_of_every_worker_on_the_operator_port_only(settings: Settings, tmp_path: Path) -> None:
    port, operator = free_port(), free_port()
    env = {**settings.to_env(), "SHOP_INGRESS_WORKERS": "3", "SHOP_INGRESS_METRICS_PORT": str(operator)}
    process = start_gunicorn(APP, env, port, tmp_path / "gunicorn.log")
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base) as client:  # new connections spread over the workers
            for _ in range(60):
                assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
            assert client.get("/v1/orders/x").status_code == 401
            public = client.get("/metrics")
            assert public.status_code == 404, "the API port never serves the metrics"
            assert public.headers["Content-Type"] == "application/problem+json"
        text = httpx.get(f"http://127.0.0.1:{operator}/metrics", timeout=5).text
        healthz = [
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("shop_http_requests_total{") and 'route="/healthz"' in line and 'status="200"' in line
        ]
        assert sum(healthz) >= 60, [line for line in text.splitlines() if "healthz" in line]
        assert 'route="/v1/orders/{order_id}"' in text
        assert 'route="unmatched"' in text, "the public 404 for /metrics was counted like any other answer"
    finally:
        stop_all([process])


def test_a_taken_operator_port_stops_gunicorn_and_names_the_setting(settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "gunicorn.log"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {
            **os.environ,
            **settings.to_env(),
            "SHOP_INGRESS_PORT": str(free_port()),
            "SHOP_INGRESS_METRICS_PORT": str(taken.getsockname()[1]),
        }
        process = spawn([str(BIN / "gunicorn"), "-c", "ingress/gunicorn.conf.py", APP], env, log, cwd=PROJECT_ROOT)
        try:
            assert process.wait(30) != 0
        finally:
            stop_all([process])
    assert "SHOP_INGRESS_METRICS_PORT" in log.read_text()
