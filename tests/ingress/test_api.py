"""The API through falcon's test client, on the real Kafka, Redis and PostgreSQL (primary and replica)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import falcon.testing
import jwt
import msgspec
import psycopg
import pytest
from confluent_kafka import Consumer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ingress import metrics
from ingress.auth.accounts import SCOPES, add_partner_client
from ingress.auth.tokens import KeyRing, Principal
from ingress.bus import KafkaBus
from sinks.search import ensure_indexes
from tests.support.api import Api
from tests.support.processes import free_port
from topology.access import OPERATOR
from topology.envelope import decode
from topology.kafka_client import client_config
from topology.settings import Settings

pytestmark = pytest.mark.stack
NOW = datetime.now(UTC)


def commands_on_kafka(settings: Settings, topic: str = "shop.orders.commands") -> list[Any]:
    consumer = Consumer(
        {**client_config(settings, OPERATOR), "group.id": uuid.uuid4().hex, "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([f"{settings.topic_prefix}{topic}"])
    found, idle = [], 0
    while idle < 6:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            idle += 1
            continue
        found.append(decode(msg.value()))
    consumer.close()
    return found


ORDER = {"lines": [{"sku": "mug", "quantity": 2}], "payment_token": "tok_visa"}
JSON = "application/json"


def partner_token(api: Api, partner: str, scopes: Any = tuple(SCOPES)) -> str:
    """A partner's access token with ``scopes`` (every scope a client may be granted unless told)."""
    return api.keys.issue(
        Principal(partner, "partner", frozenset({"partner"}), frozenset(scopes)), timedelta(minutes=5)
    )


def test_an_order_becomes_one_command_on_kafka_and_a_repeat_replays_the_answer(api: Api) -> None:
    ann = api.token("ann", "customer")
    first = api.call("POST", "/v1/orders", ann, ORDER, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 202, first.text
    again = api.call("POST", "/v1/orders", ann, ORDER, headers={"Idempotency-Key": "k1"})
    assert again.status_code == 202 and again.json == first.json
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = api.call(
        "POST", "/v1/orders", ann, {**ORDER, "payment_token": "tok_other"}, headers={"Idempotency-Key": "k1"}
    )
    assert other.status_code == 422
    assert other.headers["Content-Type"] == "application/problem+json"
    [command] = commands_on_kafka(api.settings)
    assert command.id == first.json["command_id"]
    assert command.payload.order_id == first.json["order_id"]
    assert command.payload.customer_id == "ann"
    # SKUs and quantities only: the unit prices are the catalog's, set when the stock is reserved.
    assert type(command.payload).VERSION == 2
    assert [(line.sku, line.quantity) for line in command.payload.lines] == [("mug", 2)]
    assert not any(hasattr(line, "unit_price") for line in command.payload.lines)
    assert first.headers["Location"].endswith(first.json["status_url"])


def test_kafka_unavailable_is_503_with_retry_after_and_the_key_is_free_again(private: Settings) -> None:
    dead = private.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"})
    bus = KafkaBus(dead, timeout_s=1.0)
    api = Api(private, KeyRing(private.jwt_issuer, private.jwt_audience), bus)
    api.sql(
        "INSERT INTO products (sku, title, description, brand, category, tags, price_amount, currency,"
        " updated_at, version) VALUES ('mug', 'Mug', '', '', '', '{}', 900, 'EUR', now(), 1)"
    )
    answer = api.call("POST", "/v1/orders", api.token("ann", "customer"), ORDER, headers={"Idempotency-Key": "k2"})
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"
    keys = list(api.redis.scan_iter(match=f"{private.redis_prefix}idem:*"))
    assert keys == [], "nothing half-written: the key can be used again"
    api.reads.close()


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ({**ORDER, "discount": 5}, "application/json", 422),  # unknown field
        ({"lines": [{"sku": "mug", "quantity": "2"}], "payment_token": "t"}, "application/json", 422),  # wrong type
        ({"lines": [{"sku": "mug", "quantity": 0}], "payment_token": "t"}, "application/json", 422),  # range
        ({"lines": [{"sku": "mug", "quantity": 1}] * 101, "payment_token": "t"}, "application/json", 422),  # list size
        ({"lines": [{"sku": "x" * 65, "quantity": 1}], "payment_token": "t"}, "application/json", 422),  # length
        ({"lines": [{"sku": "nosuch", "quantity": 1}], "payment_token": "t"}, "application/json", 422),  # catalog
        (b"\xff\xfe{}", "application/json", 400),  # invalid UTF-8
        (b'{"lines":[{"sku":"\xff\xfe","quantity":1}]}', "application/json", 400),  # invalid UTF-8 in a string
        (b'{"lines":[{"sku":"\\ud800","quantity":1}],"payment_token":"t"}', "application/json", 400),  # surrogate
        ({**ORDER, "payment_token": "t\u0000"}, "application/json", 422),  # NUL
        (b"[" * 5000 + b"]" * 5000, "application/json", 422),  # deep nesting
        (b'{"lines": [', "application/json", 400),  # truncated
        (ORDER, "text/plain", 415),
        (b"{" + b" " * (70 * 1024) + b"}", "application/json", 413),
    ],
)
def test_bad_bodies_are_refused_at_the_edge(api: Api, body: Any, content_type: str, status: int) -> None:
    answer = api.call("POST", "/v1/orders", api.token("ann", "customer"), body, headers={"Content-Type": content_type})
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json["status"] == status and answer.json["title"]


def _forge(api: Api, header: dict[str, Any], claims: dict[str, Any], key: Any, algorithm: str) -> str:
    return jwt.encode(claims, key, algorithm=algorithm, headers=header)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hmac_forge(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """The classic HS/RS confusion: an HMAC "signed" with the server's public key as the secret."""
    times = {k: int(v.timestamp()) if isinstance(v, datetime) else v for k, v in claims.items()}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(times).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def test_every_kind_of_bad_token_is_401(api: Api) -> None:
    ring = api.keys
    good = {"iss": ring.issuer, "aud": ring.audience, "sub": "ann", "roles": ["customer"], "jti": "j"}
    times = {"iat": NOW, "nbf": NOW, "exp": NOW + timedelta(minutes=5)}
    kid = {"kid": ring.current.kid}
    unsigned = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": ring.current.kid}).encode()).rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps({**good, "exp": 9999999999, "nbf": 0, "iat": 0}).encode()).rstrip(
        b"="
    )
    valid = api.token("ann", "customer")
    head, body, signature = valid.split(".")
    tampered_body = base64.urlsafe_b64encode(
        json.dumps({**json.loads(base64.urlsafe_b64decode(body + "==")), "roles": ["admin"]}).encode()
    ).rstrip(b"=")
    public_pem = ring.current.public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    bad = {
        "alg none": (unsigned + b"." + payload + b".").decode(),
        "HS256 with the public key": _hmac_forge({**kid, "alg": "HS256", "typ": "JWT"}, {**good, **times}, public_pem),
        "expired": _forge(
            api, kid, {**good, **times, "exp": NOW - timedelta(minutes=1)}, ring.current.private, "EdDSA"
        ),
        "not yet valid": _forge(
            api, kid, {**good, **times, "nbf": NOW + timedelta(hours=1)}, ring.current.private, "EdDSA"
        ),
        "wrong audience": _forge(api, kid, {**good, **times, "aud": "other"}, ring.current.private, "EdDSA"),
        "wrong issuer": _forge(api, kid, {**good, **times, "iss": "https://evil"}, ring.current.private, "EdDSA"),
        "unknown kid": _forge(api, {"kid": "nope"}, {**good, **times}, ring.current.private, "EdDSA"),
        "foreign key": _forge(api, kid, {**good, **times}, Ed25519PrivateKey.generate(), "EdDSA"),
        "tampered payload": f"{head}.{tampered_body.decode()}.{signature}",
        "garbage": "not.a.token",
    }
    for name, token in bad.items():
        answer = api.call("GET", "/v1/orders/o1", token)
        assert answer.status_code == 401, (name, answer.text)
        assert answer.headers["Content-Type"] == "application/problem+json", name
        assert "Bearer" in answer.headers["WWW-Authenticate"], name
    assert api.call("GET", "/v1/orders/o1", None).status_code == 401
    assert api.call("GET", "/v1/orders/o1", valid).status_code == 404


def test_keys_rotate_without_downtime(api: Api) -> None:
    old_token = api.token("ann", "customer")
    old_kid = api.keys.current.kid
    api.keys.rotate()
    jwks = api.call("GET", "/.well-known/jwks.json", None).json
    assert {k["kid"] for k in jwks["keys"]} == {old_kid, api.keys.current.kid}
    assert all(k["alg"] == "EdDSA" and k["kty"] == "OKP" and "d" not in k for k in jwks["keys"])
    assert api.call("GET", "/v1/orders/o1", old_token).status_code == 404, "a token of the previous key still verifies"
    api.keys.rotate(keep=0)
    assert api.call("GET", "/v1/orders/o1", old_token).status_code == 401, "a retired key no longer does"


def test_orders_are_read_by_their_owner_and_support_only(api: Api) -> None:
    api.sql(
        "INSERT INTO orders (order_id, customer_id, status, total_amount, currency, placed_at, updated_at, version)"
        " VALUES ('o9', 'ann', 'confirmed', 1800, 'EUR', now(), now(), 2)"
    )
    ann, bob = api.token("ann", "customer"), api.token("bob", "customer")
    sue, acme = api.token("sue", "support"), partner_token(api, "acme")
    mine = api.call("GET", "/v1/orders/o9", ann, params={"wait": "2"})
    assert mine.status_code == 200 and mine.json["status"] == "confirmed" and mine.json["customer_id"] == "ann"
    assert api.call("GET", "/v1/orders/o9", bob).status_code == 404, "404, not 403: ids do not leak"
    assert api.call("POST", "/v1/orders/o9/cancel", bob, {}).status_code == 404
    assert api.call("GET", "/v1/orders/o9", sue, params={"wait": "2"}).status_code == 200
    assert api.call("POST", "/v1/orders/o9/cancel", sue, {}).status_code == 403
    assert api.call("GET", "/v1/orders/o9", acme).status_code == 404
    cancel = api.call("POST", "/v1/orders/o9/cancel", ann, {"reason": "changed my mind"})
    assert cancel.status_code == 202, cancel.text


def test_writes_over_the_limit_get_429_with_retry_after(api: Api) -> None:
    ann = api.token("ann", "customer")
    answers = [api.call("POST", "/v1/orders", ann, {**ORDER, "payment_token": f"t{i}"}) for i in range(7)]
    assert [a.status_code for a in answers[:5]] == [202] * 5
    limited = answers[5]
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["RateLimit-Remaining"] == "0"
    assert answers[0].headers["RateLimit-Limit"] == "5"
    assert api.call("GET", "/v1/orders/o1", ann).status_code == 404, "reads have their own budget"


def test_health_readiness_and_the_openapi_document(api: Api) -> None:
    assert api.call("GET", "/healthz", None).json == {"status": "ok"}
    ready = api.call("GET", "/readyz", None)
    assert ready.status_code == 200 and ready.json["checks"] == {"redis": "ok", "postgres": "ok"}
    doc = api.call("GET", "/openapi.json", None).json
    assert doc["openapi"] == "3.1.0"
    assert doc["components"]["schemas"]["PlaceOrderRequest"]["additionalProperties"] is False
    assert set(doc["paths"]) >= {"/v1/orders", "/v1/orders/{order_id}", "/v1/orders/{order_id}/cancel"}


@pytest.mark.filterwarnings("ignore:Unknown REQUEST_METHOD:Warning")  # wsgiref's validator; the point of the test
def test_metrics_count_requests_and_bound_the_method_label(api: Api) -> None:
    api.call("GET", "/healthz", None)
    api.call("BREW", "/healthz", None)  # any token is a method on the wire: it must not mint a series
    assert api.call("GET", "/metrics", None).status_code == 404, "metrics are on the operator port only"
    text = metrics.scrape().decode()
    healthz = [
        line for line in text.splitlines() if line.startswith("shop_http_requests_total{") and "/healthz" in line
    ]
    assert any('method="GET"' in line and 'status="200"' in line for line in healthz), healthz
    assert any('method="OTHER"' in line for line in healthz), healthz
    assert not any("BREW" in line for line in text.splitlines())


def product(api: Api, sku: str, owner: str | None) -> None:
    api.sql(
        "INSERT INTO products (sku, title, description, brand, category, tags, price_amount, currency,"
        " owner_partner_id, updated_at, version) VALUES (%s, %s, '', '', '', '{}', 100, 'EUR', %s, now(), 1)",
        sku,
        f"Product {sku}",
        owner,
    )


def test_partners_write_products_and_stock_only_for_their_own_skus(api: Api) -> None:
    acme, ann = partner_token(api, "acme"), api.token("ann", "customer")
    product(api, "acme-1", "acme")
    product(api, "globex-1", "globex")
    new = {"title": "Kettle", "price_amount": 2500, "currency": "EUR", "brand": "acme", "tags": ["new"]}
    assert api.call("PUT", "/v1/products/acme-9", acme, new).status_code == 202, "a new SKU may be claimed"
    assert api.call("PUT", "/v1/products/globex-1", acme, new).status_code == 403
    assert api.call("PUT", "/v1/products/acme-9", ann, new).status_code == 403
    assert (
        api.call("POST", "/v1/stock/acme-1/adjustments", acme, {"delta": 10, "reason": "delivery"}).status_code == 202
    )
    assert api.call("POST", "/v1/stock/globex-1/adjustments", acme, {"delta": 10}).status_code == 403
    assert api.call("POST", "/v1/stock/acme-1/adjustments", acme, {"delta": 10**7}).status_code == 422
    [upsert] = commands_on_kafka(api.settings, "shop.catalog.commands")
    assert (upsert.payload.sku, upsert.payload.owner_partner_id, upsert.payload.price.amount) == (
        "acme-9",
        "acme",
        2500,
    )
    [adjust] = commands_on_kafka(api.settings, "shop.inventory.commands")
    assert (adjust.payload.sku, adjust.payload.delta, adjust.producer.kind) == ("acme-1", 10, "partner")


def test_stock_is_read_from_redis_and_falls_back_to_postgres(api: Api) -> None:
    ann = api.token("ann", "customer")
    api.redis.hset(
        f"{api.settings.redis_prefix}stock:cached", mapping={"total": 9, "reserved": 2, "available": 7, "version": 3}
    )
    api.sql("INSERT INTO stock VALUES ('stored', 5, 1, 4, now(), 2)")
    cached = api.call("GET", "/v1/stock/cached", ann).json
    assert (cached["available"], cached["source"]) == (7, "cache")
    for _ in range(40):  # the replica replays the insert within moments
        stored = api.call("GET", "/v1/stock/stored", ann).json
        if stored.get("status") != 404:
            break
        time.sleep(0.05)
    assert (stored["available"], stored["source"]) == (4, "database")
    assert api.call("GET", "/v1/stock/nosuch", ann).status_code == 404


def test_product_search_with_filters_and_facets(api: Api) -> None:
    index = f"{api.settings.search_prefix}products"
    ensure_indexes(api.search, api.settings.search_prefix)  # the sink's templates: the mappings searches rely on
    docs = [("red mug", "acme", 900), ("blue mug", "globex", 1200), ("lamp", "acme", 5000)]
    for n, (title, brand, price) in enumerate(docs):
        doc = {"sku": f"s{n}", "title": title, "brand": brand, "category": "home", "tags": ["x"], "price_amount": price}
        doc["version"] = 1  # a catalog entry's (a stock level alone is no product)
        api.search.index(index=index, id=f"s{n}", document=doc)
    api.search.indices.refresh(index=index)
    ann = api.token("ann", "customer")
    found = api.call("GET", "/v1/products", ann, params={"q": "mug"}).json
    assert {i["title"] for i in found["items"]} == {"red mug", "blue mug"}
    assert {f["value"]: f["count"] for f in found["facets"]["brand"]} == {"acme": 1, "globex": 1}
    acme = api.call("GET", "/v1/products", ann, params={"q": "mug", "brand": "acme", "max_price": "1000"}).json
    assert [i["title"] for i in acme["items"]] == ["red mug"]
    assert api.call("GET", "/v1/products", ann, params={"size": "1000"}).status_code == 400


def test_profile_notifications_and_refunds_are_the_callers_own(api: Api) -> None:
    ann, bob = api.token("ann", "customer"), api.token("bob", "customer")
    api.sql("INSERT INTO users VALUES ('ann', 'ann@example.com', 'Ann', NULL, now(), now(), 1)")
    api.sql(
        "INSERT INTO orders (order_id, customer_id, status, updated_at, version)"
        " VALUES ('o5', 'ann', 'confirmed', now(), 2)"
    )
    me = api.call("GET", "/v1/users/me", ann, params={"wait": "1"})
    assert me.status_code == 200 and me.json["email"] == "ann@example.com"
    assert api.call("GET", "/v1/users/me", bob, params={"wait": "1"}).status_code == 404
    assert api.call("PATCH", "/v1/users/me", ann, {"phone": "+4930123456"}).status_code == 202
    assert api.call("PATCH", "/v1/users/me", ann, {}).status_code == 422
    assert api.call("PATCH", "/v1/users/me", ann, {"phone": "call me"}).status_code == 422
    notes = api.mongo[api.settings.mongo_database].notifications
    notes.insert_many(
        [
            {"_id": "n1", "user_id": "ann", "channel": "email", "status": "sent", "occurred_at": NOW, "version": 1},
            {"_id": "n2", "user_id": "bob", "channel": "sms", "status": "sent", "occurred_at": NOW, "version": 1},
        ]
    )
    mine = api.call("GET", "/v1/users/me/notifications", ann).json["items"]
    assert [(n["notification_id"], n["status"]) for n in mine] == [("n1", "sent")]
    assert "_id" not in mine[0]
    refund = {"amount": 500, "currency": "EUR", "reason": "broken"}
    assert api.call("POST", "/v1/orders/o5/refunds", bob, refund).status_code == 404
    assert api.call("POST", "/v1/orders/o5/refunds", ann, refund).status_code == 202


SHIPMENT = {"carrier": "DHL Express", "tracking_code": "JD0146 0000 77"}


@pytest.fixture
def roomy_api(private: Settings) -> Iterator[Api]:
    """The app with room for more writes than the rate limits of ``api`` let a caller make."""
    settings = private.model_copy(update={"rate_burst": 100})
    bus = KafkaBus(settings)
    api = Api(settings, KeyRing(settings.jwt_issuer, settings.jwt_audience), bus)
    yield api
    bus.close()
    api.reads.close()


def order_of(api: Api, order_id: str, status: str, *skus: str) -> None:
    """Ann's order of one unit of each of ``skus``, as the read model has it."""
    api.sql(
        "INSERT INTO orders (order_id, customer_id, status, updated_at, version) VALUES (%s, 'ann', %s, now(), 2)",
        order_id,
        status,
    )
    for n, sku in enumerate(skus, start=1):
        api.sql(
            "INSERT INTO order_lines (order_id, line_no, sku, quantity, unit_amount, currency)"
            " VALUES (%s, %s, %s, 1, 100, 'EUR')",
            order_id,
            n,
            sku,
        )


def test_admins_and_the_partner_owning_every_sku_of_an_order_ship_and_deliver_it(roomy_api: Api) -> None:
    api = roomy_api
    for sku, owner in (("acme-1", "acme"), ("acme-2", "acme"), ("globex-1", "globex"), ("free-1", None)):
        product(api, sku, owner)
    order_of(api, "o1", "confirmed", "acme-1", "acme-2")
    order_of(api, "o2", "confirmed", "acme-1", "globex-1")
    order_of(api, "o3", "confirmed", "globex-1")
    order_of(api, "o4", "confirmed", "acme-1", "free-1")
    root, acme, ann = api.token("root", "admin"), partner_token(api, "acme"), api.token("ann", "customer")
    catalog_only = partner_token(api, "acme", {"catalog:write", "stock:write", "orders:write"})
    shipped = api.call("POST", "/v1/orders/o1/shipments", acme, SHIPMENT, headers={"Idempotency-Key": "s1"})
    assert shipped.status_code == 202, shipped.text
    assert shipped.json["order_id"] == "o1" and shipped.headers["Location"].endswith("/v1/orders/o1")
    some = api.call("POST", "/v1/orders/o2/shipments", acme, SHIPMENT)
    assert some.status_code == 403 and some.json["type"].endswith("/forbidden"), "acme owns one of its two SKUs"
    assert api.call("POST", "/v1/orders/o4/shipments", acme, SHIPMENT).status_code == 403, "a SKU no partner owns"
    assert api.call("POST", "/v1/orders/o3/shipments", acme, SHIPMENT).status_code == 404, "none of its goods"
    scope = api.call("POST", "/v1/orders/o1/shipments", catalog_only, SHIPMENT)
    assert scope.status_code == 403 and scope.json["type"].endswith("/insufficient-scope")
    assert 'scope="fulfilment:write"' in scope.headers["WWW-Authenticate"]
    assert api.call("POST", "/v1/orders/o1/shipments", ann, SHIPMENT).status_code == 403, "not even her own order"
    assert api.call("POST", "/v1/orders/o1/shipments", api.token("sue", "support"), SHIPMENT).status_code == 403
    assert api.call("POST", "/v1/orders/o1/shipments", None, SHIPMENT).status_code == 401
    assert api.call("POST", "/v1/orders/o2/shipments", root, SHIPMENT).status_code == 202
    api.sql("UPDATE orders SET status = 'shipped', version = 3 WHERE order_id IN ('o1', 'o2')")
    again = api.call("POST", "/v1/orders/o1/shipments", acme, SHIPMENT, headers={"Idempotency-Key": "s1"})
    assert again.status_code == 202 and again.json == shipped.json, "a retry gets the first answer, shipped or not"
    assert again.headers.get("Idempotent-Replayed") == "true"
    twice = api.call("POST", "/v1/orders/o1/shipments", acme, SHIPMENT)
    assert twice.status_code == 409 and twice.json["type"].endswith("/wrong-order-state"), twice.text
    assert api.call("POST", "/v1/orders/o1/delivery", acme).status_code == 202, "no body"
    assert api.call("POST", "/v1/orders/o2/delivery", root, {}).status_code == 202, "an empty object"
    assert api.call("POST", "/v1/orders/o2/delivery", acme).status_code == 403
    sent = [(c.type, c.payload.order_id, c.producer.kind, c.producer.id) for c in commands_on_kafka(api.settings)]
    assert sorted(sent) == [
        ("MarkOrderDelivered", "o1", "partner", "acme"),
        ("MarkOrderDelivered", "o2", "user", "root"),
        ("MarkOrderShipped", "o1", "partner", "acme"),
        ("MarkOrderShipped", "o2", "user", "root"),
    ], "one command for each 202, none for a refusal"


def test_shipments_refuse_bad_bodies_unknown_orders_and_orders_not_ready(roomy_api: Api) -> None:
    api = roomy_api
    product(api, "acme-1", "acme")
    for order_id, status in (
        ("placed", "placed"),
        ("ready", "confirmed"),
        ("gone", "cancelled"),
        ("done", "delivered"),
    ):
        order_of(api, order_id, status, "acme-1")
    root, acme = api.token("root", "admin"), partner_token(api, "acme")
    bad: list[tuple[Any, str, int]] = [
        ({}, JSON, 422),
        ({"carrier": "DHL"}, JSON, 422),
        ({**SHIPMENT, "carrier": ""}, JSON, 422),
        ({**SHIPMENT, "carrier": " DHL"}, JSON, 422),
        ({**SHIPMENT, "carrier": "DHL\n"}, JSON, 422),
        ({**SHIPMENT, "carrier": "D" * 65}, JSON, 422),
        ({**SHIPMENT, "carrier": "D\u0000L"}, JSON, 422),
        ({**SHIPMENT, "tracking_code": "T" * 129}, JSON, 422),
        ({**SHIPMENT, "tracking_code": "JD01<script>"}, JSON, 422),
        ({**SHIPMENT, "tracking_code": 146}, JSON, 422),
        ({**SHIPMENT, "eta": "tomorrow"}, JSON, 422),
        (b'{"carrier": "DHL", ', JSON, 400),
        (SHIPMENT, "text/plain", 415),
    ]
    for body, media, status in bad:
        answer = api.call("POST", "/v1/orders/ready/shipments", root, body, headers={"Content-Type": media})
        assert answer.status_code == status, (body, answer.text)
        assert answer.headers["Content-Type"] == "application/problem+json"
    assert api.call("POST", "/v1/orders/ready/delivery", root, {"note": "left at the door"}).status_code == 422
    assert (
        api.call("POST", "/v1/orders/ready/delivery", root, b"{}", headers={"Content-Type": "text/plain"}).status_code
        == 415
    )
    for who in (root, acme):
        assert api.call("POST", "/v1/orders/o_nosuch/shipments", who, SHIPMENT).status_code == 404
        assert api.call("POST", "/v1/orders/o_nosuch/delivery", who).status_code == 404
    for order_id in ("placed", "gone", "done"):
        early = api.call("POST", f"/v1/orders/{order_id}/shipments", acme, SHIPMENT)
        assert early.status_code == 409 and early.json["type"].endswith("/wrong-order-state"), early.text
        assert "only a confirmed order can be shipped" in early.json["detail"]
    for order_id in ("placed", "ready", "gone", "done"):
        assert api.call("POST", f"/v1/orders/{order_id}/delivery", root).status_code == 409, order_id
    refused = api.call("POST", "/v1/orders/placed/shipments", root, SHIPMENT, headers={"Idempotency-Key": "k"})
    assert refused.status_code == 409
    api.sql("UPDATE orders SET status = 'confirmed', version = 3 WHERE order_id = 'placed'")
    later = api.call("POST", "/v1/orders/placed/shipments", root, SHIPMENT, headers={"Idempotency-Key": "k"})
    assert later.status_code == 202 and "Idempotent-Replayed" not in later.headers, "a refusal leaves the key free"
    [command] = commands_on_kafka(api.settings)
    assert (command.payload.order_id, command.payload.carrier, command.payload.tracking_code) == (
        "placed",
        "DHL Express",
        "JD0146 0000 77",
    )


def form(api: Api, body: str, **headers: str) -> falcon.testing.Result:
    headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    return api.client.simulate_post("/oauth/token", body=body.encode(), headers=headers)


def test_register_login_refresh_rotation_reuse_and_logout(api: Api) -> None:
    user = {"email": "Eve@Example.com", "name": "Eve", "password": "correct horse battery"}
    registered = api.call("POST", "/v1/users", None, user)
    assert registered.status_code == 202, registered.text
    [command] = commands_on_kafka(api.settings, "shop.users.commands")
    assert (command.payload.user_id, command.payload.email) == (registered.json["user_id"], "Eve@Example.com")
    assert "password" not in json.dumps(msgspec.to_builtins(command)), "the password never travels"
    assert api.call("POST", "/v1/users", None, {**user, "email": "eve@example.com"}).status_code == 409
    assert api.call("POST", "/v1/users", None, {**user, "password": "short"}).status_code == 422
    wrong = api.call("POST", "/v1/auth/login", None, {"email": "eve@example.com", "password": "nope"})
    assert wrong.status_code == 401
    assert api.call("POST", "/v1/auth/login", None, {"email": "nobody@example.com", "password": "x"}).status_code == 401
    login = api.call("POST", "/v1/auth/login", None, {"email": "eve@example.com", "password": user["password"]})
    assert login.status_code == 200, login.text
    assert login.headers["Cache-Control"] == "no-store"
    access, refresh = login.json["access_token"], login.json["refresh_token"]
    assert api.keys.verify(access).subject == registered.json["user_id"]
    assert api.call("GET", "/v1/orders/nosuch", access).status_code == 404, "the access token works"
    rotated = api.call("POST", "/v1/auth/refresh", None, {"refresh_token": refresh})
    assert rotated.status_code == 200 and rotated.json["refresh_token"] != refresh
    reused = api.call("POST", "/v1/auth/refresh", None, {"refresh_token": refresh})
    assert reused.status_code == 401, "a used refresh token is refused"
    after = api.call("POST", "/v1/auth/refresh", None, {"refresh_token": rotated.json["refresh_token"]})
    assert after.status_code == 401, "reuse revoked the whole session"
    again = api.call("POST", "/v1/auth/login", None, {"email": "eve@example.com", "password": user["password"]}).json
    assert (
        api.call(
            "POST", "/v1/auth/logout", again["access_token"], {"refresh_token": again["refresh_token"]}
        ).status_code
        == 204
    )
    assert api.call("GET", "/v1/orders/nosuch", again["access_token"]).status_code == 401, "logged out"
    assert api.call("POST", "/v1/auth/refresh", None, {"refresh_token": again["refresh_token"]}).status_code == 401


def test_login_attempts_are_limited_per_email(api: Api) -> None:
    answers = [api.call("POST", "/v1/auth/login", None, {"email": "x@example.com", "password": "p"}) for _ in range(6)]
    assert [a.status_code for a in answers] == [401] * 5 + [429]
    assert int(answers[-1].headers["Retry-After"]) >= 1


def test_registration_with_kafka_down_is_503_and_leaves_the_email_free(private: Settings) -> None:
    dead = KafkaBus(private.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"}), timeout_s=1.0)
    api = Api(private, KeyRing(private.jwt_issuer, private.jwt_audience), dead)
    user = {"email": "zed@example.com", "name": "Zed", "password": "long enough pw"}
    assert api.call("POST", "/v1/users", None, user).status_code == 503
    with psycopg.connect(private.pg_url, options=f"-c search_path={private.pg_schema}") as conn:
        assert conn.execute("SELECT count(*) FROM credentials").fetchone() == (0,)
    api.reads.close()


def test_partners_get_scoped_tokens_by_client_credentials(api: Api) -> None:
    client_id, secret = add_partner_client(api.settings, "acme", ["catalog:write", "stock:write"])
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    granted = form(api, "grant_type=client_credentials&scope=catalog:write", Authorization=f"Basic {basic}")
    assert granted.status_code == 200, granted.text
    assert granted.json["scope"] == "catalog:write" and granted.json["token_type"] == "Bearer"
    principal = api.keys.verify(granted.json["access_token"])
    assert (principal.subject, principal.kind, principal.scopes) == ("acme", "partner", frozenset({"catalog:write"}))
    new = {"title": "Kettle", "price_amount": 2500, "currency": "EUR"}
    assert api.call("PUT", "/v1/products/acme-77", granted.json["access_token"], new).status_code == 202
    wrong = form(api, f"grant_type=client_credentials&client_id={client_id}&client_secret=nope")
    assert wrong.status_code == 401 and wrong.json["error"] == "invalid_client"
    assert form(api, f"grant_type=password&client_id={client_id}&client_secret={secret}").json["error"] == (
        "unsupported_grant_type"
    )
    assert (
        form(api, f"grant_type=client_credentials&client_id={client_id}&client_secret={secret}&scope=admin").json[
            "error"
        ]
        == "invalid_scope"
    )
    assert form(api, "{}", **{"Content-Type": "application/json"}).status_code == 415


def test_operators_register_partner_clients_from_the_cli(api: Api) -> None:
    shopstream = [str(Path(sys.executable).parent / "shopstream"), "partner-add"]
    env = {**os.environ, **api.settings.to_env()}
    made = subprocess.run([*shopstream, "acme", "--scope", "stock:write"], env=env, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    client = json.loads(made.stdout)
    basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    granted = form(api, "grant_type=client_credentials", Authorization=f"Basic {basic}")
    assert granted.status_code == 200 and granted.json["scope"] == "stock:write"
    refused = subprocess.run([*shopstream, "acme", "--scope", "root"], env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "invalid choice" in refused.stderr
