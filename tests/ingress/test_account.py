"""The caller's own account through HTTP: preferences, addresses, push devices, their orders; support's view.

On the real Kafka, Redis and PostgreSQL (primary and replica): the ingress in process sends the
commands, the users flow and the PostgreSQL sink run in process over them (``UsersPipeline``),
and the reads come back from the read models.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ingress.auth.tokens import KeyRing
from ingress.bus import KafkaBus
from tests.support.api import Api
from tests.support.scope import Scope
from tests.support.users_pipeline import UsersPipeline
from tests.support.waiting import eventually
from topology.messages.users import MAX_ADDRESSES
from topology.settings import Settings

pytestmark = pytest.mark.stack
HOME = {"name": "Ann Smith", "line1": "1 Main St", "city": "Berlin", "postal_code": "10115", "country": "DE"}
WORK = {"name": "Ann Smith", "line1": "10 Downing St", "city": "London", "postal_code": "SW1A 2AA", "country": "GB"}


@pytest.fixture(scope="module")
def shared(settings: Settings) -> Iterator[tuple[Api, UsersPipeline]]:
    """The ingress with its default limits and the pipeline, in a scope of the module's own (each test its user)."""
    scope = Scope(settings, overrides={"replica_wait_ms": 2000})
    scope.apply_topology()
    scope.migrate()
    bus = KafkaBus(scope.settings)
    api = Api(scope.settings, KeyRing(settings.jwt_issuer, settings.jwt_audience), bus)
    pipeline = UsersPipeline(scope.settings)
    yield api, pipeline
    pipeline.close()
    bus.close()
    api.reads.close()
    scope.close()


@pytest.fixture
def account(shared: tuple[Api, UsersPipeline]) -> tuple[Api, UsersPipeline, str]:
    """A user of the test's own, registered and in the read models."""
    api, pipeline = shared
    email = f"ann-{uuid.uuid4().hex[:8]}@example.com"
    answer = api.call("POST", "/v1/users", None, {"email": email, "name": "Ann", "password": "pw-pw-pw-pw"})
    assert answer.status_code == 202, answer.text
    pipeline.catch_up()
    return api, pipeline, str(answer.json["user_id"])


@pytest.fixture
def edge(ns: Scope) -> Iterator[Api]:
    """The ingress alone, for bodies it refuses before any store is read or any command sent."""
    bus = KafkaBus(ns.settings)
    api = Api(ns.settings, KeyRing(ns.settings.jwt_issuer, ns.settings.jwt_audience), bus)
    yield api
    bus.close()
    api.reads.close()


def me(api: Api, token: str) -> dict[str, Any]:
    answer = api.call("GET", "/v1/users/me", token, params={"wait": "1"})
    assert answer.status_code == 200, answer.text
    return dict(answer.json)


def test_preferences_change_what_is_sent_and_keep_the_rest(account: tuple[Api, UsersPipeline, str]) -> None:
    api, pipeline, ann = account
    token = api.token(ann, "customer")
    shown = me(api, token)
    assert (shown["status"], shown["addresses"], shown["devices"]) == ("active", [], [])
    assert shown["preferences"] == {
        "channels": {"transactional": ["email"], "marketing": []},
        "marketing_consent": False,
        "marketing_consent_at": None,
        "quiet_hours": None,
        "locale": "en-GB",
    }
    before = datetime.now(UTC)
    change = {
        "channels": {"transactional": ["push", "email"], "marketing": ["email"]},
        "marketing_consent": True,
        "quiet_hours": {"start": "22:00", "end": "07:30", "time_zone": "Europe/Berlin"},
        "locale": "de-DE",
    }
    sent = api.call("PATCH", "/v1/users/me/preferences", token, change, headers={"Idempotency-Key": "p1"})
    assert sent.status_code == 202, sent.text
    assert sent.json["status_url"] == "/v1/users/me"
    assert api.call("PATCH", "/v1/users/me/preferences", token, {"locale": "fr-FR"}).status_code == 202
    pipeline.catch_up()
    preferences = me(api, token)["preferences"]
    assert preferences["channels"] == {"transactional": ["email", "push"], "marketing": ["email"]}
    assert preferences["quiet_hours"] == change["quiet_hours"]
    assert preferences["locale"] == "fr-FR", "a later change of one preference keeps the others"
    assert before <= datetime.fromisoformat(preferences["marketing_consent_at"]) <= datetime.now(UTC)
    assert api.call("PATCH", "/v1/users/me/preferences", token, {"quiet_hours": None}).status_code == 202
    pipeline.catch_up()
    assert me(api, token)["preferences"]["quiet_hours"] is None


BAD_PREFERENCES = [
    ({}, "send channels, marketing_consent, quiet_hours or locale"),
    ({"locale": "xx-XX"}, "$.locale"),
    ({"quiet_hours": {"start": "22:00", "end": "07:00", "time_zone": "Mars/Olympus_Mons"}}, "time_zone"),
    ({"quiet_hours": {"start": "22:00", "end": "22:00", "time_zone": "UTC"}}, "start and end"),
    ({"quiet_hours": {"start": "24:00", "end": "07:00", "time_zone": "UTC"}}, "$.quiet_hours.start"),
    ({"channels": {"transactional": ["fax"], "marketing": []}}, "$.channels.transactional[0]"),
    ({"marketing_consent": "yes"}, "$.marketing_consent"),
]
BAD_ADDRESSES = [
    ({"country": "XX"}, "$.country"),
    ({"country": "de"}, "$.country"),
    ({"country": None}, "$.country"),
    ({"postal_code": "1011"}, "postal_code: '1011' is no postal code of DE"),
    ({"country": "US", "postal_code": "SW1A 1AA"}, "postal_code: 'SW1A 1AA' is no postal code of US"),
    ({"postal_code": ""}, "postal_code: an address in DE needs one"),
    ({"line1": ""}, "$.line1"),
    ({"city": "x" * 201}, "$.city"),
    ({"line2": " padded "}, "$.line2"),
    ({"name": None}, "$.name"),
    ({"line1": "1 Main St\nBerlin"}, "$.line1"),
    ({"floor": 3}, "floor"),
]


def test_bodies_of_the_wrong_shape_are_422_naming_the_field(edge: Api) -> None:
    token = edge.token("ann", "customer")
    cases = [("PATCH", "/v1/users/me/preferences", body, named) for body, named in BAD_PREFERENCES]
    cases += [("POST", "/v1/users/me/addresses", {**HOME, **change}, named) for change, named in BAD_ADDRESSES]
    cases += [("PUT", "/v1/users/me/addresses/a1", {**HOME, **change}, named) for change, named in BAD_ADDRESSES[:3]]
    without_country = {k: v for k, v in HOME.items() if k != "country"}
    cases.append(("POST", "/v1/users/me/addresses", without_country, "country"))
    for method, path, body, named in cases:
        answer = edge.call(method, path, token, body)
        assert answer.status_code == 422, (method, path, body, answer.text)
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert named in answer.json["detail"], (body, answer.json)


def test_addresses_are_added_changed_and_removed_with_one_default(account: tuple[Api, UsersPipeline, str]) -> None:
    api, pipeline, ann = account
    token = api.token(ann, "customer")
    home = api.call("POST", "/v1/users/me/addresses", token, HOME, headers={"Idempotency-Key": "a1"})
    assert home.status_code == 202, home.text
    again = api.call("POST", "/v1/users/me/addresses", token, HOME, headers={"Idempotency-Key": "a1"})
    assert again.json == home.json, "a retry names the same address"
    home_id = home.json["address_id"]
    assert home.json["status_url"] == "/v1/users/me/addresses"
    early = api.call("DELETE", f"/v1/users/me/addresses/{home_id}", token)
    assert early.status_code == 409 and early.json["type"].endswith("/not-caught-up"), early.text
    work_id = api.call("POST", "/v1/users/me/addresses", token, WORK).json["address_id"]
    pipeline.catch_up()
    listed = api.call("GET", "/v1/users/me/addresses", token, params={"wait": "1"})
    assert [(a["address_id"], a["city"], a["default"]) for a in listed.json["items"]] == [
        (home_id, "Berlin", True),
        (work_id, "London", False),
    ]
    moved = api.call("PUT", f"/v1/users/me/addresses/{work_id}", token, {**WORK, "line2": "Flat 1", "default": True})
    assert moved.status_code == 202, moved.text
    pipeline.catch_up()
    assert [(a["line2"], a["default"]) for a in me(api, token)["addresses"]] == [("", False), ("Flat 1", True)]
    assert api.call("DELETE", f"/v1/users/me/addresses/{work_id}", token).status_code == 202
    pipeline.catch_up()
    assert [(a["address_id"], a["default"]) for a in me(api, token)["addresses"]] == [(home_id, True)]
    for method, body in (("PUT", HOME), ("DELETE", None)):
        gone = api.call(method, f"/v1/users/me/addresses/{work_id}", token, body)
        assert gone.status_code == 404, (method, gone.text)
    other = api.token("bob", "customer")
    assert api.call("DELETE", f"/v1/users/me/addresses/{home_id}", other).status_code == 404, "only one's own"
    assert pipeline.dead == [], "nothing was refused"


def test_an_address_book_takes_twenty_addresses(account: tuple[Api, UsersPipeline, str]) -> None:
    api, pipeline, ann = account
    token = api.token(ann, "customer")
    for _ in range(MAX_ADDRESSES):
        assert api.call("POST", "/v1/users/me/addresses", token, HOME).status_code == 202
    pipeline.catch_up()
    full = api.call("POST", "/v1/users/me/addresses", token, WORK)
    assert full.status_code == 409 and full.json["type"].endswith("/too-many-addresses"), full.text
    assert len(me(api, token)["addresses"]) == MAX_ADDRESSES


def test_push_devices_are_registered_once_per_token_and_listed_without_it(
    account: tuple[Api, UsersPipeline, str],
) -> None:
    api, pipeline, ann = account
    token = api.token(ann, "customer")
    first = api.call("POST", "/v1/users/me/devices", token, {"platform": "ios", "token": "apns-0123abcd"})
    assert first.status_code == 202, first.text
    again = api.call("POST", "/v1/users/me/devices", token, {"platform": "ios", "token": "apns-0123abcd"})
    assert again.json["device_id"] == first.json["device_id"], "the same token is the same device"
    web = api.call("POST", "/v1/users/me/devices", token, {"platform": "web", "token": "https://push.example/abc"})
    pipeline.catch_up()
    devices = me(api, token)["devices"]
    assert [(d["device_id"], d["platform"]) for d in devices] == [
        (first.json["device_id"], "ios"),
        (web.json["device_id"], "web"),
    ]
    assert all(set(d) == {"device_id", "platform", "registered_at"} for d in devices), "no token is shown"
    assert [e.type for e in pipeline.events].count("DeviceRegistered") == 2
    assert api.call("DELETE", f"/v1/users/me/devices/{first.json['device_id']}", token).status_code == 202
    pipeline.catch_up()
    assert [d["platform"] for d in me(api, token)["devices"]] == ["web"]
    assert api.call("DELETE", "/v1/users/me/devices/d_nosuch", token).status_code == 404
    for bad in (
        {"platform": "blackberry", "token": "t"},
        {"platform": "ios", "token": "with space"},
        {"platform": "ios"},
    ):
        assert api.call("POST", "/v1/users/me/devices", token, bad).status_code == 422, bad


def test_my_orders_are_newest_first_a_page_at_a_time(account: tuple[Api, UsersPipeline, str]) -> None:
    api, _, ann = account
    token = api.token(ann, "customer")
    at = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    placed = [(f"o{n}", at + timedelta(minutes=n // 2)) for n in range(7)]  # pairs placed at the same time
    for order_id, when in placed:
        api.sql(
            "INSERT INTO orders (order_id, customer_id, status, total_amount, currency, placed_at, updated_at, version)"
            " VALUES (%s, %s, 'confirmed', 1800, 'EUR', %s, now(), 2)",
            order_id,
            ann,
            when,
        )
    api.sql(
        "INSERT INTO orders (order_id, customer_id, status, placed_at, updated_at, version) VALUES"
        " ('o-bob', 'bob', 'placed', now(), now(), 1), ('o-half', %s, 'confirmed', NULL, now(), 2)",
        ann,
    )
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"size": "3", **({"cursor": cursor} if cursor else {})}
        page = api.call("GET", "/v1/users/me/orders", token, params=params)
        assert page.status_code == 200, page.text
        seen += [item["order_id"] for item in page.json["items"]]
        assert all(item["total_amount"] == 1800 and item["currency"] == "EUR" for item in page.json["items"])
        cursor = page.json["next_cursor"]
        if cursor is None:
            break
    newest_first = sorted(placed, key=lambda p: (p[1], p[0]), reverse=True)
    assert seen == [order_id for order_id, _ in newest_first], "each of hers once, newest first"
    search_cursor = "eyJ4IjoxfQ"
    for bad in (search_cursor, "not-a-cursor"):
        refused = api.call("GET", "/v1/users/me/orders", token, params={"cursor": bad})
        assert refused.status_code == 400 and refused.json["type"].endswith("/invalid-cursor"), refused.text
    assert api.call("GET", "/v1/users/me/orders", api.token("bob", "customer")).json["items"][0]["order_id"] == "o-bob"


def test_support_reads_an_account_another_customer_learns_nothing_of_it(
    account: tuple[Api, UsersPipeline, str],
) -> None:
    api, pipeline, ann = account
    added = api.call("POST", "/v1/users/me/addresses", api.token(ann, "customer"), HOME)
    assert added.status_code == 202, added.text
    pipeline.catch_up()

    def read_with_the_address() -> Any:
        answer = api.call("GET", f"/v1/users/{ann}", api.token("sue", "support"))
        return answer if answer.status_code != 200 or answer.json["addresses"] else None

    shown = eventually(read_with_the_address, 30, "the address in the account's read model")
    assert shown.status_code == 200, shown.text
    assert (shown.json["name"], shown.json["status"], len(shown.json["addresses"])) == ("Ann", "active", 1)
    assert api.call("GET", f"/v1/users/{ann}", api.token(ann, "customer")).status_code == 200
    assert api.call("GET", f"/v1/users/{ann}", api.token("bob", "customer")).status_code == 404
    assert api.call("GET", "/v1/users/u_nosuch", api.token("sue", "support")).status_code == 404
    assert api.call("GET", f"/v1/users/{ann}", api.token("acme", "partner", kind="partner")).status_code == 403
    support_writes = api.call("POST", "/v1/users/me/addresses", api.token("sue", "support"), HOME)
    assert support_writes.status_code == 403
