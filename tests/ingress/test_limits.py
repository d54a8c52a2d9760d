"""Every caller is limited: per client address (behind trusted proxies too), per credential route and per account.

The credential routes (registration, login, refresh, partner tokens) have their own limits
per address and per the account they name, and the process's argon2 work is bounded by its
budget however many requests get through: floods are counted in hashes, not in seconds.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from prometheus_client import REGISTRY

from ingress.addresses import ClientAddress, networks
from ingress.auth import accounts
from ingress.auth.accounts import add_partner_client
from ingress.auth.tokens import KeyRing
from ingress.bus import KafkaBus
from tests.support.api import Api
from tests.support.processes import free_port
from topology.settings import Settings

pytestmark = pytest.mark.stack
USER = {"name": "Flo", "password": "correct horse battery"}


class CountingHasher(PasswordHasher):
    """argon2 as the accounts use it, counting each hash and verification it computes."""

    def __init__(self) -> None:
        super().__init__()
        self.computed = 0

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.computed += 1
        return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.computed += 1
        return super().verify(hash, password)


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> CountingHasher:
    counting = CountingHasher()
    monkeypatch.setattr(accounts, "HASHER", counting)
    return counting


def app(private: Settings, **limits: Any) -> Iterator[Api]:
    bus = KafkaBus(private)
    api = Api(private.model_copy(update=limits), KeyRing(private.jwt_issuer, private.jwt_audience), bus)
    yield api
    bus.close()
    api.reads.close()


@pytest.fixture
def tight(private: Settings) -> Iterator[Api]:
    """Credential routes: 4 per address; argon2: 3 per process, hardly refilled while the test runs."""
    yield from app(
        private,
        rate_credentials_burst=4,
        rate_credentials_per_s=0.001,
        password_hash_burst=3,
        password_hashes_per_s=0.001,
        rate_address_burst=30,
        rate_address_per_s=0.001,
    )


@pytest.fixture
def roomy(private: Settings) -> Iterator[Api]:
    """Address limits out of the way, to reach the per-account ones."""
    yield from app(private, rate_credentials_burst=1000, rate_address_burst=1000, password_hash_burst=1000)


def post(api: Api, path: str, body: Any, address: str) -> Any:
    return api.call("POST", path, None, body, remote_addr=address)


def test_callers_without_a_token_are_limited_per_address(tight: Api) -> None:
    answers = [tight.call("GET", "/v1/orders/o1", None, remote_addr="198.51.100.7") for _ in range(32)]
    statuses = [a.status_code for a in answers]
    assert statuses[:30] == [401] * 30 and statuses[30:] == [429, 429], statuses
    limited = answers[-1]
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["Content-Type"] == "application/problem+json"
    assert limited.json["status"] == 429
    assert tight.call("GET", "/healthz", None, remote_addr="198.51.100.7").status_code == 429, "public routes too"
    assert tight.call("GET", "/healthz", None, remote_addr="198.51.100.8").status_code == 200, "per address"


def test_a_registration_flood_is_refused_and_hashes_no_more_than_the_budget(tight: Api, hasher: CountingHasher) -> None:
    started = time.process_time()
    one_address = [post(tight, "/v1/users", {**USER, "email": f"a{i}@example.com"}, "203.0.113.1") for i in range(20)]
    assert [a.status_code for a in one_address] == [202] * 3 + [429] * 17
    assert one_address[3].json["type"].endswith("/busy"), "the process's budget refused the fourth"
    assert one_address[4].json["type"].endswith("/rate-limited"), "the address's limit the fifth"
    assert int(one_address[3].headers["Retry-After"]) >= 1, "the budget says when to come back"
    assert int(one_address[-1].headers["Retry-After"]) >= 1
    # From many addresses the per-address limits never bite: the process's budget does.
    spread = [
        post(tight, "/v1/users", {**USER, "email": f"b{i}@example.com"}, f"203.0.113.{10 + i}") for i in range(40)
    ]
    assert {(a.status_code, a.json["type"].rsplit("/", 1)[1]) for a in spread} == {(429, "busy")}
    assert all(a.headers["Content-Type"] == "application/problem+json" for a in spread)
    cpu_s = time.process_time() - started
    assert hasher.computed <= 3 + 1, f"{hasher.computed} argon2 hashes for 60 registrations ({cpu_s:.2f} s of CPU)"


def test_login_and_token_floods_get_429_and_hash_within_the_budget(tight: Api, hasher: CountingHasher) -> None:
    started = time.process_time()
    logins = [
        post(tight, "/v1/auth/login", {"email": f"x{i}@example.com", "password": "p"}, "192.0.2.1") for i in range(30)
    ]
    assert [a.status_code for a in logins] == [401] * 3 + [429] * 27
    assert logins[3].json["type"].endswith("/busy")
    tokens = [
        tight.client.simulate_post(
            "/oauth/token",
            body=f"grant_type=client_credentials&client_id=pc_{i}&client_secret=s".encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            remote_addr="192.0.2.2",
        )
        for i in range(30)
    ]
    kinds = [a.json["type"].rsplit("/", 1)[1] for a in tokens]
    assert kinds[:4] == ["busy"] * 4, "the budget is the process's, spent by the logins"
    assert set(kinds[4:]) == {"rate-limited"}
    assert {a.status_code for a in tokens} == {429}
    refreshes = [post(tight, "/v1/auth/refresh", {"refresh_token": f"rt_{i}"}, "192.0.2.3") for i in range(30)]
    assert [a.status_code for a in refreshes] == [401] * 4 + [429] * 26
    cpu_s = time.process_time() - started
    assert hasher.computed <= 3 + 1, f"{hasher.computed} argon2 verifications for 60 attempts ({cpu_s:.2f} s of CPU)"


def test_each_credential_route_is_limited_per_the_account_it_names(roomy: Api, hasher: CountingHasher) -> None:
    logins = [
        post(roomy, "/v1/auth/login", {"email": "Vic@example.com", "password": "p"}, f"10.1.0.{i}") for i in range(7)
    ]
    assert [a.status_code for a in logins] == [401] * 5 + [429] * 2, "five tries per email, from any address"
    registered = post(roomy, "/v1/users", {**USER, "email": "flo@example.com"}, "10.2.0.1")
    assert registered.status_code == 202, registered.text
    session = post(roomy, "/v1/auth/login", {"email": "flo@example.com", "password": USER["password"]}, "10.2.0.1")
    assert session.status_code == 200, session.text
    used = session.json["refresh_token"]
    assert post(roomy, "/v1/auth/refresh", {"refresh_token": used}, "10.2.0.2").status_code == 200
    again = [post(roomy, "/v1/auth/refresh", {"refresh_token": used}, f"10.3.0.{i}") for i in range(12)]
    assert [a.status_code for a in again] == [401] * 9 + [429] * 3, "ten refreshes per account"
    client_id, _ = add_partner_client(roomy.settings, "acme", ["catalog:write"])
    basic = base64.b64encode(f"{client_id}:wrong".encode()).decode()
    tokens = [
        roomy.client.simulate_post(
            "/oauth/token",
            body=b"grant_type=client_credentials",
            headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {basic}"},
            remote_addr=f"10.4.0.{i}",
        )
        for i in range(12)
    ]
    assert [a.status_code for a in tokens] == [401] * 10 + [429] * 2, "ten tries per client id"
    assert tokens[-1].json["status"] == 429 and int(tokens[-1].headers["Retry-After"]) >= 1
    # five logins, a registration and its login, the client's secret stored, ten token attempts; none refused hashed
    assert hasher.computed == 5 + 1 + 1 + 1 + 10


def test_behind_trusted_proxies_the_right_most_untrusted_address_is_the_client(private: Settings) -> None:
    gen = app(private, trusted_proxies="10.0.0.0/8, 192.0.2.9", rate_address_burst=2, rate_address_per_s=0.001)
    api = next(gen)
    try:

        def health(peer: str, forwarded: str) -> int:
            return api.call(
                "GET", "/healthz", None, remote_addr=peer, headers={"X-Forwarded-For": forwarded}
            ).status_code

        # A client choosing what it puts left of the proxies changes nothing: 198.51.100.1 is counted each time.
        assert [
            health("10.0.0.1", f"{fake}, 198.51.100.1, 10.0.0.5") for fake in ("1.1.1.1", "2.2.2.2", "3.3.3.3")
        ] == [
            200,
            200,
            429,
        ]
        assert health("192.0.2.9", "198.51.100.2") == 200, "another client behind the same proxy has its own count"
        # From an untrusted peer the header is ignored: the peer is the client.
        assert [health("203.0.113.5", f"198.51.100.{i}") for i in range(3)] == [200, 200, 429]
    finally:
        next(gen, None)


def test_client_address_rules() -> None:
    none = ClientAddress(networks(""))
    assert none.of("203.0.113.5", "1.2.3.4") == "203.0.113.5", "no trusted proxies: the header is never read"
    proxies = ClientAddress(networks("10.0.0.0/8,::1"))
    assert proxies.of("10.0.0.1", "198.51.100.1, 10.0.0.2") == "198.51.100.1"
    assert proxies.of("::1", "2001:db8::1") == "2001:db8::1"
    assert proxies.of("10.0.0.1", "10.0.0.3, 10.0.0.2") == "10.0.0.3", "all trusted: the farthest hop"
    assert proxies.of("10.0.0.1", "") == "10.0.0.1"
    assert proxies.of("10.0.0.1", "junk, 10.0.0.2") == "10.0.0.2", "no address where one was due: the last vouched for"
    assert proxies.of("198.51.100.9", "10.0.0.1") == "198.51.100.9", "an untrusted peer's header is not read"
    with pytest.raises(ValueError, match="SHOP_TRUSTED_PROXIES"):
        networks("10.0.0.0/8, proxy.internal")


def test_without_redis_requests_are_refused_with_503_but_health_answers_for_itself(private: Settings) -> None:
    gen = app(private, redis_url_override=f"redis://127.0.0.1:{free_port()}/0")
    api = next(gen)
    try:
        refused = api.call("GET", "/v1/orders/o1", api.token("ann", "customer"))
        assert refused.status_code == 503, refused.text
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert refused.headers["Retry-After"] == "1"
        assert api.call("POST", "/v1/auth/login", None, {"email": "a@example.com", "password": "p"}).status_code == 503
        assert api.call("GET", "/healthz", None).status_code == 200
        ready = api.call("GET", "/readyz", None)
        assert ready.status_code == 503 and ready.json["checks"]["redis"].startswith("down")
    finally:
        next(gen, None)


def test_without_redis_and_limits_failing_open_requests_go_on_unchecked_and_readiness_says_so(
    private: Settings,
) -> None:
    gen = app(private, redis_url_override=f"redis://127.0.0.1:{free_port()}/0", rate_limit_redis_down="open")
    api = next(gen)
    try:
        before = REGISTRY.get_sample_value("shop_ratelimit_unchecked_total") or 0.0
        me = api.call("GET", "/v1/users/me", api.token("ann", "customer"))
        assert me.status_code == 404, me.text  # on to the read model, which has no such user
        assert api.call("GET", "/v1/users/me", None).status_code == 401, "a missing token is still refused"
        assert REGISTRY.get_sample_value("shop_ratelimit_unchecked_total") == before + 2
        ready = api.call("GET", "/readyz", None)
        assert ready.status_code == 200, ready.text
        assert ready.json["checks"]["redis"].startswith("down") and "open" in ready.json["checks"]["redis"]
    finally:
        next(gen, None)
