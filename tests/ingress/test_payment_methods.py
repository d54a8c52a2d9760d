"""Saved payment methods through the API, on the real stack and a stand-in of the provider of the current source.

A user saves cards (one-time tokens from the provider's card form), sees them with the default
first, changes the default and removes one; nobody else sees or touches them; an order names
one and its command carries it with the user's customer; the order's payment is on the order.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.ingress.test_api import ORDER, commands_on_kafka, partner_token
from tests.support.api import Api
from topology.messages import PlaceOrderV3, SavedMethod

pytestmark = pytest.mark.stack
METHODS = "/v1/users/me/payment-methods"


def save(api: Api, token: str, card: str = "tok_visa", **fields: Any) -> dict[str, Any]:
    answer = api.call("POST", METHODS, token, {"token": card, **fields})
    assert answer.status_code == 201, answer.text
    assert answer.headers["Location"] == f"{METHODS}/{answer.json['payment_method_id']}"
    return dict(answer.json)


def listed(api: Api, token: str) -> list[tuple[str, str, bool]]:
    answer = api.call("GET", METHODS, token)
    assert answer.status_code == 200, answer.text
    return [(m["payment_method_id"], m["last4"], m["default"]) for m in answer.json["items"]]


def test_a_user_saves_cards_picks_the_default_and_removes_one_and_no_one_else_sees_them(api: Api) -> None:
    ann, bob = api.token("ann", "customer"), api.token("bob", "customer")
    assert listed(api, ann) == [], "no card saved yet: no customer at the provider either"
    visa = save(api, ann, "tok_visa", default=True)
    assert {k: visa[k] for k in ("brand", "last4", "exp_month", "exp_year", "default")} == {
        "brand": "visa",
        "last4": "4242",
        "exp_month": 12,
        "exp_year": 2034,
        "default": True,
    }
    first = api.call("POST", METHODS, ann, {"token": "tok_mastercard"}, headers={"Idempotency-Key": "card-1"})
    again = api.call("POST", METHODS, ann, {"token": "tok_mastercard"}, headers={"Idempotency-Key": "card-1"})
    assert again.json == first.json, "a retry under the same key saves the card once"
    master = first.json["payment_method_id"]
    assert listed(api, ann) == [(visa["payment_method_id"], "4242", True), (master, "4444", False)]

    made_default = api.call("PATCH", f"{METHODS}/{master}", ann, {"default": True})
    assert made_default.status_code == 200 and made_default.json["default"] is True
    assert listed(api, ann)[0] == (master, "4444", True), "the default comes first"

    assert listed(api, bob) == []
    for method, path in (("PATCH", f"{METHODS}/{master}"), ("DELETE", f"{METHODS}/{master}")):
        body = {"default": True} if method == "PATCH" else None
        assert api.call(method, path, bob, body).status_code == 404, "another's card is not found"
    assert api.call("DELETE", f"{METHODS}/pm_nosuch", bob).status_code == 404
    bad = api.call("POST", METHODS, bob, {"token": "tok_nosuch"})
    assert (bad.status_code, bad.json["type"].rsplit("/", 1)[1]) == (422, "invalid-card-token")
    assert api.call("GET", METHODS, partner_token(api, "acme")).status_code == 403, "a partner has no vault here"

    assert api.call("DELETE", f"{METHODS}/{master}", ann).status_code == 204
    assert listed(api, ann) == [(visa["payment_method_id"], "4242", False)], "the removed default leaves none"


def test_an_order_is_paid_with_a_saved_method_of_the_caller_only(api: Api) -> None:
    ann, bob, cat = (api.token(name, "customer") for name in ("ann", "bob", "cat"))
    card = save(api, ann)["payment_method_id"]
    order = {"lines": ORDER["lines"], "payment_method_id": card}
    placed = api.call("POST", "/v1/orders", ann, order, headers={"Idempotency-Key": "o-1"})
    assert placed.status_code == 202, placed.text

    refused = api.call("POST", "/v1/orders", bob, order)
    assert (refused.status_code, refused.json["type"].rsplit("/", 1)[1]) == (422, "unknown-payment-method")
    save(api, bob)  # a customer of his own at the provider: the provider is asked, and says the card is not his
    again = api.call("POST", "/v1/orders", bob, order, headers={"Idempotency-Key": "o-2"})
    assert (again.status_code, again.json["type"].rsplit("/", 1)[1]) == (422, "unknown-payment-method")
    retried = api.call("POST", "/v1/orders", bob, order, headers={"Idempotency-Key": "o-2"})
    assert retried.json["type"] == again.json["type"], "a refusal frees the key: the retry is judged again"
    for neither_or_both in ({"lines": ORDER["lines"]}, {**order, "payment_token": "tok_visa"}):
        assert api.call("POST", "/v1/orders", cat, neither_or_both).status_code == 422

    [command] = commands_on_kafka(api.settings)
    assert command.id == placed.json["command_id"] and command.version == 3
    assert isinstance(command.payload, PlaceOrderV3) and command.payload.customer_id == "ann"
    customer = httpx.get(f"{api.settings.gateway_url}/v1/payment_methods/{card}").json()["customer"]
    assert command.payload.payment == SavedMethod(payment_method_id=card, gateway_customer_id=customer)


def test_the_order_answers_its_payment_as_the_payments_read_model_has_it(api: Api) -> None:
    ann = api.token("ann", "customer")
    for order_id in ("o-paid", "o-new"):
        api.sql(
            "INSERT INTO orders (order_id, customer_id, status, total_amount, currency, placed_at, updated_at, version)"
            " VALUES (%s, 'ann', 'confirmed', 1800, 'EUR', now(), now(), 3)",
            order_id,
        )
    api.sql(
        "INSERT INTO payments (order_id, payment_id, status, authorized_amount, captured_amount, currency,"
        " updated_at, version) VALUES ('o-paid', 'pay_1', 'refunded', 1800, 1800, 'EUR', now(), 4)"
    )
    for version, amount in ((3, 500), (4, 300)):
        api.sql(
            "INSERT INTO payment_refunds (order_id, version, payment_id, amount, currency, occurred_at)"
            " VALUES ('o-paid', %s, 'pay_1', %s, 'EUR', now())",
            version,
            amount,
        )
    paid = api.call("GET", "/v1/orders/o-paid", ann).json["payment"]
    assert {k: v for k, v in paid.items() if k != "updated_at"} == {
        "status": "refunded",
        "payment_id": "pay_1",
        "authorized_amount": 1800,
        "captured_amount": 1800,
        "refunded_amount": 800,
        "currency": "EUR",
        "decline_reason": None,
    }
    assert api.call("GET", "/v1/orders/o-new", ann).json["payment"] is None, "no outcome yet"


def test_a_provider_failing_for_a_while_is_retried_under_one_key_then_a_503(api: Api) -> None:
    ann = api.token("ann", "customer")
    faults = f"{api.settings.gateway_url}/_admin/faults"
    try:
        httpx.put(faults, json={"mode": "error", "count": 2, "for_s": 30}).raise_for_status()
        saved = save(api, ann)  # two 503s, then the same request again under the same key
        assert listed(api, ann) == [(saved["payment_method_id"], "4242", False)], "saved once"
        httpx.put(faults, json={"mode": "error", "count": 1 + api.settings.gateway_retries, "for_s": 30})
        down = api.call("POST", METHODS, ann, {"token": "tok_visa"})
        assert (down.status_code, down.headers["Retry-After"]) == (503, "1")
        assert listed(api, ann) == [(saved["payment_method_id"], "4242", False)]
    finally:
        httpx.put(faults, json={"mode": "none"})
