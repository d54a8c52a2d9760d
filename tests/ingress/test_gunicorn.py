"""The ingress as production runs it: gunicorn with several workers, metrics counted across them."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.processes import free_port, start_gunicorn, stop_all
from topology.settings import Settings

pytestmark = pytest.mark.stack


def test_metrics_count_requests_of_every_worker(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    env = {**settings.to_env(), "SHOP_INGRESS_WORKERS": "3"}
    process = start_gunicorn("ingress.wsgi:app_from_env()", env, port, tmp_path / "gunicorn.log")
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base) as client:  # new connections spread over the workers
            for _ in range(60):
                assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
            assert client.get("/v1/orders/x").status_code == 401
            text = client.get("/metrics").text
        healthz = [
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("shop_http_requests_total{") and 'route="/healthz"' in line and 'status="200"' in line
        ]
        assert sum(healthz) >= 60, [line for line in text.splitlines() if "healthz" in line]
        assert 'route="/v1/orders/{order_id}"' in text
    finally:
        stop_all([process])
