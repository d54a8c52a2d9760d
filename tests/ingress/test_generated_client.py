"""A client generated from the app's own ``/openapi.json`` (openapi-python-client) talks to the app.

The generator must understand the whole document (no warning), and the client it writes
registers, logs in, searches products, places an order and reads it back, every answer
parsed into the generated models. It talks over HTTP to the session's one whole system
(``live_system``: every Procfile process under private names), so the order goes the whole way.
"""

from __future__ import annotations

import importlib
import sys
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from openapi_python_client import generate
from openapi_python_client.config import Config, ConfigFile, MetaType

from ingress.auth.tokens import Principal
from ingress.wsgi import load_keys
from tests.support.live import LiveSystem
from tests.support.waiting import eventually

pytestmark = pytest.mark.stack
PACKAGE = "shopstream_client"


def generated_client(api: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The package openapi-python-client writes from the app's ``/openapi.json``, imported."""
    with httpx.Client(base_url=api, timeout=10) as http:
        document = http.get("/openapi.json")
    assert document.status_code == 200, document.text
    source = folder / "openapi.json"
    source.write_bytes(document.content)
    config = Config.from_sources(
        ConfigFile(post_hooks=[], literal_enums=True), MetaType.NONE, source, "utf-8", True, folder / PACKAGE
    )
    problems = generate(config=config)
    assert [(p.level, p.header, p.detail) for p in problems] == [], "the generator understood every part"
    monkeypatch.syspath_prepend(str(folder))
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
        monkeypatch.delitem(sys.modules, name)
    return importlib.import_module(PACKAGE)


def test_a_client_generated_from_the_document_registers_logs_in_searches_orders_and_reads_back(
    live_system: LiveSystem, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, keys = live_system.api, load_keys(live_system.settings)
    client_package = generated_client(base_url, tmp_path, monkeypatch)
    models = importlib.import_module(f"{PACKAGE}.models")
    operations: tuple[str, ...] = (
        "sessions.register",
        "sessions.log_in",
        "products.search_products",
        "products.upsert_product",
    )
    operations += ("orders.place_order", "orders.get_order", "stock.adjust_stock")
    api = {name: importlib.import_module(f"{PACKAGE}.api.{name}") for name in operations}
    httpx_args: dict[str, Any] = {}
    anyone = client_package.Client(base_url=base_url, httpx_args=httpx_args, raise_on_unexpected_status=True)

    # A product, put in by an admin (no one registers as an admin).
    admin_token = keys.issue(Principal("root", "user", frozenset({"admin"})), timedelta(minutes=10))
    admin = client_package.AuthenticatedClient(
        base_url=base_url, token=admin_token, httpx_args=httpx_args, raise_on_unexpected_status=True
    )
    product = models.ProductRequest(title="Copper kettle", price_amount=3900, currency="EUR", brand="acme")
    upserted = api["products.upsert_product"].sync(sku="kettle-1", client=admin, body=product)
    assert isinstance(upserted, models.Accepted), upserted
    assert upserted.status_url == "/v1/products/kettle-1"
    stocked = api["stock.adjust_stock"].sync(
        sku="kettle-1", client=admin, body=models.StockAdjustmentRequest(delta=5, reason="delivery")
    )
    assert isinstance(stocked, models.Accepted), stocked

    # Register and log in.
    registered = api["sessions.register"].sync(
        client=anyone, body=models.RegisterRequest(email="gen@example.com", name="Gen", password="a long password")
    )
    assert isinstance(registered, models.Registered), registered
    assert registered.user_id.startswith("u_") and registered.status_url == "/v1/users/me"
    wrong = api["sessions.log_in"].sync(
        client=anyone, body=models.LoginRequest(email="gen@example.com", password="not it")
    )
    assert isinstance(wrong, models.Problem) and wrong.status == 401
    session = api["sessions.log_in"].sync(
        client=anyone, body=models.LoginRequest(email="gen@example.com", password="a long password")
    )
    assert isinstance(session, models.SessionTokens), session
    assert session.token_type == "Bearer" and session.expires_in > 0 and session.refresh_token.startswith("rt_")
    customer = client_package.AuthenticatedClient(
        base_url=base_url, token=session.access_token, httpx_args=httpx_args, raise_on_unexpected_status=True
    )

    # Search: the catalog flow and the search sink bring the product to the index.
    page = eventually(
        lambda: (found := api["products.search_products"].sync(client=customer, q="kettle")).total and found,
        90,
        "the product never reached the search index",
    )
    assert isinstance(page, models.ProductPage)
    [item] = page.items
    assert isinstance(item, models.Product)
    assert (item.sku, item.title, item.price_amount, item.currency) == ("kettle-1", "Copper kettle", 3900, "EUR")
    assert [(f.value, f.count) for f in page.facets.brand] == [("acme", 1)]

    # Order: accepted once the catalog price is in the read model, then read back from it.
    order = models.PlaceOrderRequest(lines=[models.LineRequest(sku="kettle-1", quantity=2)], payment_token="tok_visa")

    def placed() -> Any:
        answer = api["orders.place_order"].sync(client=customer, body=order, idempotency_key="gen-1")
        if isinstance(answer, models.Problem):
            assert (answer.status, answer.type_) == (422, "https://shopstream.dev/problems/unknown-sku"), answer
            return None
        return answer

    accepted = eventually(placed, 60, "the catalog price never reached the read model")
    assert isinstance(accepted, models.Accepted)
    assert accepted.status_url == f"/v1/orders/{accepted.order_id}"
    read = eventually(
        lambda: (
            isinstance(got := api["orders.get_order"].sync(accepted.order_id, client=customer, wait=2), models.Order)
            and got
        ),
        60,
        "the order never reached the read model",
    )
    assert (read.order_id, read.customer_id) == (accepted.order_id, registered.user_id)
    assert read.status in ("placed", "confirmed"), read.status  # the whole saga runs: it may be confirmed already
    assert (read.total_amount, read.currency) == (7800, "EUR")
    assert isinstance(read.placed_at, datetime) and isinstance(read.updated_at, datetime)
    assert [(line.sku, line.quantity, line.unit_amount) for line in read.lines] == [("kettle-1", 2, 3900)]
    assert [change.status for change in read.history][:1] == ["placed"]
    assert all(isinstance(change.occurred_at, datetime) for change in read.history)

    # Another customer does not learn the order exists: the problem parses too.
    other_token = keys.issue(Principal("bob", "user", frozenset({"customer"})), timedelta(minutes=10))
    other = client_package.AuthenticatedClient(
        base_url=base_url, token=other_token, httpx_args=httpx_args, raise_on_unexpected_status=True
    )
    hidden = api["orders.get_order"].sync(accepted.order_id, client=other)
    assert isinstance(hidden, models.Problem) and hidden.status == 404
