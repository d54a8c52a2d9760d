"""One whole system for the session's observability tests, started once, watched by a Prometheus of its own.

``live_system`` runs ``shopstream run`` (every Procfile process, bench.system.System) under
private names (a Scope) on free ports, beside a private Prometheus and Alertmanager (their
own folder and free ports, a 1 s scrape) that scrape it, and puts a short load through the
front door before it yields: a product and its stock, orders that are confirmed and orders
whose card is declined, a refused body. The Prometheus is private so a test may stop it.
The system is traced (every trace kept) to the stack's trace backend, for the trace tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.system import System, with_free_ports
from ingress.auth.tokens import Principal, Role
from ingress.wsgi import load_keys
from ops import scrape
from ops.stack.launcher import Stack
from tests.support.processes import free_port
from tests.support.scope import Scope
from tests.support.waiting import eventually
from topology.processes import metrics_targets
from topology.settings import Settings

MONITORING = ("alertmanager", "prometheus")
TERMINAL = ("confirmed", "cancelled")
SKU = "live-mug"


@dataclass
class LiveSystem:
    """A running system (``settings``, ``api``) and the Prometheus that scrapes it (``monitor``)."""

    settings: Settings
    api: str
    monitor: Settings
    system: System
    orders: dict[str, str] = field(default_factory=dict)  # order id -> terminal status of the load's orders

    @property
    def system_label(self) -> str:
        return scrape.system_name(self.settings)

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.monitor.host}:{self.monitor.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://{self.monitor.host}:{self.monitor.alertmanager_port}"

    def monitoring(self) -> Stack:
        """The private Prometheus and Alertmanager, to stop and start them."""
        return Stack(self.monitor, only=MONITORING)

    def bearer(self, subject: str, role: Role) -> dict[str, str]:
        token = load_keys(self.settings).issue(Principal(subject, "user", frozenset({role})), timedelta(minutes=30))
        return {"Authorization": f"Bearer {token}"}

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """The instant vector Prometheus answers for ``expr``; AssertionError with its error when it refuses."""
        params: dict[str, Any] = {"query": expr, **({"time": at} if at is not None else {})}
        answer = httpx.get(f"{self.prometheus_url}/api/v1/query", params=params, timeout=10).json()
        assert answer["status"] == "success", f"{expr}: {answer.get('errorType')}: {answer.get('error')}"
        return list(answer["data"]["result"])

    def place(self, customer: dict[str, str], token: str) -> str:
        """An order of one mug paid with ``token``; its id, once the ingress took it (202)."""
        order = {"lines": [{"sku": SKU, "quantity": 1}], "payment_token": token}
        with httpx.Client(base_url=self.api, timeout=10) as client:
            answer = eventually(
                lambda: (r := client.post("/v1/orders", json=order, headers=customer)).status_code == 202 and r,
                60,
                "the ingress never took the order (is the product's price on the replica?)",
            )
        return str(answer.json()["order_id"])

    def settle(self, customer: dict[str, str], order_id: str) -> str:
        """The order's terminal status, read back from the API."""
        with httpx.Client(base_url=self.api, timeout=10) as client:

            def terminal() -> str | None:
                answer = client.get(f"/v1/orders/{order_id}", params={"wait": 2}, headers=customer)
                status = answer.json().get("status") if answer.status_code == 200 else None
                return status if status in TERMINAL else None

            return str(eventually(terminal, 120, f"order {order_id} never settled"))


def short_load(live: LiveSystem) -> None:
    """A product and its stock, 6 orders paid and 3 declined, a refused body and an unknown order."""
    admin = live.bearer("live-admin", "admin")
    ann, bob = live.bearer("live-ann", "customer"), live.bearer("live-bob", "customer")
    with httpx.Client(base_url=live.api, timeout=10) as client:
        product = {"title": "Live mug", "price_amount": 1250, "currency": "EUR"}
        assert client.put(f"/v1/products/{SKU}", json=product, headers=admin).status_code == 202
        eventually(
            lambda: client.post(f"/v1/stock/{SKU}/adjustments", json={"delta": 100}, headers=admin).status_code == 202,
            60,
            "the product never reached the read model",
        )
        assert client.post("/v1/orders", json={"lines": "many"}, headers=ann).status_code == 422
        assert client.get("/v1/orders/no-such-order", headers=ann).status_code == 404
    placed = [(ann, live.place(ann, "tok_visa")) for _ in range(6)]
    placed += [(bob, live.place(bob, "tok_decline")) for _ in range(3)]
    for customer, order_id in placed:
        live.orders[order_id] = live.settle(customer, order_id)


def wait_scraped(live: LiveSystem, placed: int, timeout_s: float = 60) -> None:
    """Until every target of the run answers Prometheus and its counters show the ``placed`` orders."""
    system = live.system_label
    jobs = {job for job, _ in metrics_targets(live.settings)}

    def caught_up() -> bool:
        up = {row["metric"]["job"] for row in live.query(f'up{{system="{system}"}} == 1')}
        total = live.query(f'sum(shop_orders_placed_total{{system="{system}"}})')
        return up >= jobs and bool(total) and float(total[0]["value"][1]) >= placed

    eventually(caught_up, timeout_s, f"Prometheus never scraped every process of {system} after the load")


@pytest.fixture(scope="session")
def live_system(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSystem]:
    folder = tmp_path_factory.mktemp("live-system")
    scope = Scope(settings)
    # Traced, every trace kept: the trace tests read this system's spans from the stack's backend.
    traced = {"otlp_endpoint": f"http://{settings.host}:{settings.traces_http_port}", "trace_sample_ratio": 1.0}
    system_settings = with_free_ports(scope.settings.model_copy(update=traced))
    monitor = system_settings.model_copy(
        update={
            "stack_dir": folder / "monitor",
            "tools_dir": settings.tools_dir or settings.stack_dir / "tools",
            "prometheus_port": free_port(),
            "alertmanager_port": free_port(),
            "prometheus_scrape_interval_s": 1,
        }
    )
    monitoring = Stack(monitor, only=MONITORING)
    targets: Path | None = None
    try:
        failed = [row for row in monitoring.up() if not row.ok]
        assert not failed, "\n".join(f"{row.name}: {row.error}" for row in failed)
        with System(system_settings, folder / "system") as system:
            assert system.process is not None
            targets = scrape.register(monitor, metrics_targets(system.settings), pid=system.process.pid)
            live = LiveSystem(system.settings, system.api, monitor, system)
            short_load(live)
            wait_scraped(live, placed=len(live.orders))
            yield live
    finally:
        if targets is not None:
            scrape.unregister(targets)
        monitoring.down()
        scope.close()
