"""Decisions that guard a write are never taken on a read that is behind: a write right after its 202.

No flow or sink runs here, so the read model never catches up by itself: the test writes
the row the sink would have written.
"""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from ingress.auth.accounts import add_partner_client
from ingress.auth.tokens import Principal
from tests.support.api import Api

pytestmark = pytest.mark.stack
PRODUCT = {"title": "Kettle", "price_amount": 2500, "currency": "EUR"}
ORDER = {"lines": [{"sku": "mug", "quantity": 1}], "payment_token": "tok_visa"}


def partner(api: Api, subject: str) -> str:
    scopes = frozenset({"catalog:write", "stock:write"})
    return api.keys.issue(Principal(subject, "partner", frozenset({"partner"}), scopes), timedelta(minutes=5))


def test_a_partner_stocking_the_product_it_just_created_is_told_to_retry_not_refused(api: Api) -> None:
    acme, globex = partner(api, "acme"), partner(api, "globex")
    assert api.call("PUT", "/v1/products/kettle-1", acme, PRODUCT).status_code == 202
    early = api.call("POST", "/v1/stock/kettle-1/adjustments", acme, {"delta": 5})
    assert early.status_code == 409, early.text
    assert early.json["type"].endswith("/not-caught-up")
    assert int(early.headers["Retry-After"]) >= 1
    assert api.call("PUT", "/v1/products/kettle-1", acme, {**PRODUCT, "title": "Kettle 2"}).status_code == 202
    other = api.call("PUT", "/v1/products/kettle-1", globex, PRODUCT)
    assert other.status_code == 409, "another partner's claim waits for the read model to say whose it is"
    assert api.call("POST", "/v1/stock/kettle-1/adjustments", globex, {"delta": 5}).status_code == 403
    api.sql(
        "INSERT INTO products (sku, title, description, brand, category, tags, price_amount, currency,"
        " owner_partner_id, updated_at, version) VALUES ('kettle-1', 'Kettle', '', '', '', '{}', 2500, 'EUR',"
        " 'acme', now(), 1)"
    )
    assert api.call("POST", "/v1/stock/kettle-1/adjustments", acme, {"delta": 5}).status_code == 202
    assert api.call("PUT", "/v1/products/kettle-1", globex, PRODUCT).status_code == 403, "now the owner is known"
    assert api.call("POST", "/v1/stock/never-made/adjustments", acme, {"delta": 5}).status_code == 403


def test_cancelling_an_order_right_after_its_202_is_409_for_its_customer_only(api: Api) -> None:
    ann, bob = api.token("ann", "customer"), api.token("bob", "customer")
    placed = api.call("POST", "/v1/orders", ann, ORDER)
    assert placed.status_code == 202, placed.text
    order_id = placed.json["order_id"]
    early = api.call("POST", f"/v1/orders/{order_id}/cancel", ann, {})
    assert early.status_code == 409, early.text
    assert int(early.headers["Retry-After"]) >= 1
    refund = {"amount": 100, "currency": "EUR", "reason": "broken"}
    assert api.call("POST", f"/v1/orders/{order_id}/refunds", ann, refund).status_code == 409
    assert api.call("POST", f"/v1/orders/{order_id}/cancel", bob, {}).status_code == 404, "others learn nothing"
    assert api.call("POST", "/v1/orders/o_never/cancel", ann, {}).status_code == 404
    api.sql(
        "INSERT INTO orders (order_id, customer_id, status, updated_at, version)"
        " VALUES (%s, 'ann', 'placed', now(), 1)",
        order_id,
    )
    assert api.call("POST", f"/v1/orders/{order_id}/cancel", ann, {}).status_code == 202


def test_a_catalog_only_client_may_not_adjust_stock(api: Api) -> None:
    client_id, secret = add_partner_client(api.settings, "acme", ["catalog:write"])
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    granted = api.client.simulate_post(
        "/oauth/token",
        body=b"grant_type=client_credentials",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {basic}"},
    )
    assert granted.status_code == 200, granted.text
    token = granted.json["access_token"]
    api.sql(
        "INSERT INTO products (sku, title, description, brand, category, tags, price_amount, currency,"
        " owner_partner_id, updated_at, version) VALUES ('acme-5', 'Lamp', '', '', '', '{}', 100, 'EUR',"
        " 'acme', now(), 1)"
    )
    assert api.call("PUT", "/v1/products/acme-5", token, PRODUCT).status_code == 202
    refused = api.call("POST", "/v1/stock/acme-5/adjustments", token, {"delta": 1})
    assert refused.status_code == 403, refused.text
    assert refused.json["type"].endswith("/insufficient-scope")
    assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
    assert 'scope="stock:write"' in refused.headers["WWW-Authenticate"]
