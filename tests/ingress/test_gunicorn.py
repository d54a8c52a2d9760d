"""The ingress as production runs it: gunicorn with several workers, metrics counted across them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.processes import stop_all
from topology.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.stack


def test_metrics_count_requests_of_every_worker(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, **settings.to_env(), "SHOP_INGRESS_PORT": str(port), "SHOP_INGRESS_WORKERS": "3"}
    gunicorn = Path(sys.executable).parent / "gunicorn"
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [str(gunicorn), "-c", "ingress/gunicorn.conf.py", "ingress.wsgi:app_from_env()"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()[-2000:]
            time.sleep(0.2)
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
