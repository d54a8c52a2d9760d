"""The system end to end, as ``make run`` runs it: HTTP in, the flows, the sinks, and reads back over HTTP.

Everything under private names (tests/support/scope.py): gunicorn serving the ingress, the
orders, inventory, payments and catalog flows, and the PostgreSQL and Redis sinks, each its
own process on the real stack. A product and its stock go in through the API, a customer
orders, and the order's status (read from the replica the PostgreSQL sink feeds) and the stock
level (from Redis, which the Redis sink fills) come back through the API. Every process traces
every request and record to a trace backend that is down (a closed port): that costs the system
nothing but the spans.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from ingress.auth.tokens import Principal, Role
from ingress.wsgi import load_keys
from tests.support.processes import BIN, free_port, spawn, start_gunicorn, stop_all
from tests.support.scope import Scope
from tests.support.sinks import SinkHarness
from tests.support.waiting import eventually
from topology.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.stack
FLOWS = ("orders", "inventory", "payments", "catalog")
SINKS = ("postgres", "redis")


@pytest.fixture
def system(settings: Settings, tmp_path: Path) -> Iterator[tuple[Scope, str]]:
    sinks = SinkHarness(settings, tmp_path)
    port = free_port()
    env = {**sinks.settings.to_env(), "SHOP_INGRESS_PORT": str(port), "SHOP_INGRESS_WORKERS": "1"}
    # Every span of every process goes to a port nothing listens on: the trace backend is down.
    down = {"SHOP_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}", "SHOP_TRACE_SAMPLE_RATIO": "1.0"}
    env |= down
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for flow in FLOWS:
            argv = [str(BIN / "shopstream"), "flow", flow]
            processes.append(spawn(argv, {**os.environ, **env}, tmp_path / f"{flow}.log", cwd=PROJECT_ROOT))
        for sink in SINKS:
            sinks.start(sink, **down)
        ingress = start_gunicorn("ingress.wsgi:app_from_env()", env, port, tmp_path / "ingress.log", timeout_s=60)
        processes.append(ingress)
        yield sinks.scope, f"http://127.0.0.1:{port}"
    finally:
        stop_all(processes)
        sinks.close()


def test_an_order_placed_over_http_is_confirmed_and_read_back(system: tuple[Scope, str]) -> None:
    scope, base = system
    keys = load_keys(scope.settings)  # the ring of the key folder the ingress verifies with

    def bearer(subject: str, role: Role) -> dict[str, str]:
        token = keys.issue(Principal(subject, "user", frozenset({role})), timedelta(minutes=10))
        return {"Authorization": f"Bearer {token}"}

    admin, ann = bearer("root", "admin"), bearer("ann", "customer")
    with httpx.Client(base_url=base, timeout=10) as api:
        product = {"title": "Blue mug", "price_amount": 1250, "currency": "EUR"}
        assert api.put("/v1/products/mug-e2e", json=product, headers=admin).status_code == 202
        restock = api.post("/v1/stock/mug-e2e/adjustments", json={"delta": 5, "reason": "delivery"}, headers=admin)
        assert restock.status_code == 202, restock.text
        eventually(
            lambda: api.get("/v1/stock/mug-e2e", headers=admin).json().get("available") == 5,
            60,
            "the stock never reached the read model",
        )
        order = {"lines": [{"sku": "mug-e2e", "quantity": 2}], "payment_token": "tok_visa"}
        placed = eventually(
            lambda: (r := api.post("/v1/orders", json=order, headers=ann)).status_code == 202 and r,
            60,
            "the catalog price never reached the replica",
        )
        status_url = placed.json()["status_url"]
        confirmed = eventually(
            lambda: (
                (r := api.get(status_url, params={"wait": 2}, headers=ann)).status_code == 200
                and r.json()["status"] == "confirmed"
                and r.json()
            ),
            90,
            "the order was never confirmed in the read model",
        )
        assert confirmed["customer_id"] == "ann"
        assert confirmed["total_amount"] == 2500
        assert [line["sku"] for line in confirmed["lines"]] == ["mug-e2e"]
        assert [h["status"] for h in confirmed["history"]][:1] == ["placed"]
        level = eventually(
            lambda: (r := api.get("/v1/stock/mug-e2e", headers=admin).json())["total"] == 3 and r,
            60,
            "the committed units never left the stock level",
        )
        assert level["available"] == 3 and level["reserved"] == 0
        other = api.get(status_url, headers=bearer("bob", "customer"))
        assert other.status_code == 404, "another customer does not learn the order exists"
