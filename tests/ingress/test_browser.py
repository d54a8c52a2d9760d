"""Browsers: CORS for the listed origins only, and the security headers on the answer of every route."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ingress import routes
from ingress.auth.tokens import KeyRing
from ingress.bus import KafkaBus
from tests.support.api import Api
from topology.processes import ROUTES, Route
from topology.settings import Settings

pytestmark = pytest.mark.stack
SHOP = "https://shop.example"
EVIL = "https://evil.example"
PARAMS = {
    "order_id": "o_nosuch",
    "sku": "mug",
    "address_id": "a_nosuch",
    "device_id": "d_nosuch",
    "user_id": "u_nosuch",
    "payment_method_id": "pm_nosuch",
}
SECURITY = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@pytest.fixture
def browser_api(private: Settings) -> Iterator[Api]:
    settings = private.model_copy(
        update={
            "cors_origins": f"{SHOP}, https://admin.shop.example",
            "cors_max_age_s": 900,
            "rate_burst": 100,
            "rate_address_burst": 1000,
        }
    )
    bus = KafkaBus(settings)
    yield Api(settings, KeyRing(settings.jwt_issuer, settings.jwt_audience), bus)
    bus.close()


def _call(api: Api, route: Route, origin: str) -> Any:
    op = next(op for op in routes.OPERATIONS if op.route == route)
    token = None if op.security == "public" else api.token("ann", "customer")
    body: Any = b"" if op.request is not None else None
    headers = {"Origin": origin, "Content-Type": op.media}
    return api.call(route.method, route.path.format(**PARAMS), token, body, headers=headers)


def test_every_route_answers_with_the_security_headers(browser_api: Api) -> None:
    for route in (*ROUTES, *routes.SERVICE):
        _check_headers(browser_api, route)


def _check_headers(browser_api: Api, route: Route) -> None:
    answer = _call(browser_api, route, SHOP)
    assert answer.status_code < 500, answer.text
    for name, value in SECURITY.items():
        assert answer.headers.get(name) == value, (route.operation, name, answer.status_code)
    public = next(op for op in routes.OPERATIONS if op.route == route).security == "public"
    if not public:
        assert answer.headers["Cache-Control"] == "no-store", route.operation
    if route is not routes.SIGNING_KEYS:
        assert answer.headers["Cache-Control"] == "no-store", route.operation
    assert answer.headers["Access-Control-Allow-Origin"] == SHOP, route.operation
    assert "Origin" in answer.headers["Vary"]
    assert "Retry-After" in answer.headers["Access-Control-Expose-Headers"]
    foreign = _call(browser_api, route, EVIL)
    assert "Access-Control-Allow-Origin" not in foreign.headers, route.operation
    assert foreign.headers["X-Content-Type-Options"] == "nosniff"


def test_preflights_are_answered_for_listed_origins_and_refused_for_others(browser_api: Api) -> None:
    for route in ROUTES:
        _check_preflight(browser_api, route)


def _check_preflight(browser_api: Api, route: Route) -> None:
    path = route.path.format(**PARAMS)
    asked = {"Access-Control-Request-Method": route.method, "Access-Control-Request-Headers": "authorization"}
    ok = browser_api.client.simulate_options(path, headers={"Origin": SHOP, **asked})
    assert ok.status_code == 204, (route.operation, ok.text)
    assert ok.headers["Access-Control-Allow-Origin"] == SHOP
    methods = {m.strip() for m in ok.headers["Access-Control-Allow-Methods"].split(",")}
    assert route.method in methods
    assert methods == {op.method for op in routes.by_path()[route.path]}, "exactly what the path answers"
    assert {"Authorization", "Content-Type", "Idempotency-Key"} <= {
        h.strip() for h in ok.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert ok.headers["Access-Control-Max-Age"] == "900"
    assert ok.headers["Strict-Transport-Security"] == SECURITY["Strict-Transport-Security"]
    unanswered = next(m for m in ("DELETE", "PUT", "PATCH", "POST") if m not in methods)
    for refused in (
        browser_api.client.simulate_options(path, headers={"Origin": EVIL, **asked}),
        browser_api.client.simulate_options(path, headers=asked),
        browser_api.client.simulate_options(
            path, headers={"Origin": SHOP, "Access-Control-Request-Method": unanswered}
        ),
    ):
        assert refused.status_code == 403, (route.operation, refused.text)
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert not any(h.lower().startswith("access-control-") for h in refused.headers), refused.headers


def test_without_listed_origins_no_answer_carries_cors_headers(api: Api) -> None:
    answer = api.call("GET", "/healthz", None, headers={"Origin": SHOP})
    assert "Access-Control-Allow-Origin" not in answer.headers
    preflight = api.client.simulate_options(
        "/v1/orders", headers={"Origin": SHOP, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 403
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_answers_of_no_route_carry_the_security_headers_too(browser_api: Api) -> None:
    for answer in (
        browser_api.call("GET", "/nowhere", None),
        browser_api.call("DELETE", "/v1/orders", browser_api.token("ann", "customer")),
        browser_api.call("GET", "/metrics", None),
    ):
        assert answer.status_code in (404, 405), answer.text
        assert answer.headers["Content-Type"] == "application/problem+json"
        for name, value in SECURITY.items():
            assert answer.headers.get(name) == value, (answer.status_code, name)
        assert answer.headers["Cache-Control"] == "no-store"
