"""`shopstream user suspend|reinstate|close`: a suspended or closed account cannot log in or order, at once.

On the real stack: the ingress in process, the CLI in process under the same private names, and
the users flow in process over what the CLI sent (``UsersPipeline``), for the record it keeps.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from ingress.auth.tokens import KeyRing
from ingress.bus import KafkaBus
from sinks.mongo import audit_entry
from tests.support.api import Api
from tests.support.cli import Cli
from tests.support.processes import free_port
from tests.support.scope import Scope
from tests.support.users_pipeline import UsersPipeline
from tests.support.waiting import eventually
from topology.settings import Settings
from topology.stores import ACCOUNT_STATE

pytestmark = pytest.mark.stack
PASSWORD = "correct horse"
ORDER = {"lines": [{"sku": "mug", "quantity": 1}], "payment_token": "tok_visa"}


@pytest.fixture
def system(ns: Scope) -> Iterator[tuple[Api, Cli, Settings]]:
    ns.apply_topology()
    ns.migrate()
    settings = ns.settings
    bus = KafkaBus(settings)
    api = Api(settings, KeyRing(settings.jwt_issuer, settings.jwt_audience), bus)
    api.sql(
        "INSERT INTO products (sku, title, description, brand, category, tags, price_amount, currency,"
        " updated_at, version) VALUES ('mug', 'Mug', '', '', '', '{}', 900, 'EUR', now(), 1)"
    )
    yield api, Cli(settings.to_env()), settings
    bus.close()
    api.reads.close()


def register(api: Api, email: str) -> str:
    answer = api.call("POST", "/v1/users", None, {"email": email, "name": "Ann", "password": PASSWORD})
    assert answer.status_code == 202, answer.text
    return str(answer.json["user_id"])


def log_in(api: Api, email: str) -> Any:
    return api.call("POST", "/v1/auth/login", None, {"email": email, "password": PASSWORD})


def refresh(api: Api, pair: dict[str, str]) -> Any:
    return api.call("POST", "/v1/auth/refresh", None, {"refresh_token": pair["refresh_token"]})


def place(api: Api, token: str) -> Any:
    return api.call("POST", "/v1/orders", token, ORDER)


def status_in_db(settings: Settings, user_id: str) -> str:
    with psycopg.connect(settings.pg_url, options=f"-c search_path={settings.pg_schema}") as db:
        row = db.execute("SELECT status FROM credentials WHERE user_id = %s", (user_id,)).fetchone()
    assert row is not None
    return str(row[0])


def test_a_suspended_account_is_refused_at_once_and_comes_back_only_with_a_new_login(
    system: tuple[Api, Cli, Settings],
) -> None:
    api, cli, settings = system
    ann = register(api, "ann@example.com")
    first = log_in(api, "ann@example.com")
    assert first.status_code == 200, first.text
    pair = first.json
    assert place(api, pair["access_token"]).status_code == 202

    before = datetime.now(UTC)
    suspended = cli("user", "suspend", "ANN@example.com", "--reason", "chargebacks", "--by", "sue")
    assert suspended.exit_code == 0, suspended.output
    assert "is suspended (was active) by sue" in suspended.output
    for answer in (place(api, pair["access_token"]), api.call("GET", "/v1/users/me", pair["access_token"])):
        assert answer.status_code == 403, answer.text
        assert answer.json["type"].endswith("/account-suspended"), "the token stops at once"
    refused = log_in(api, "ann@example.com")  # five logins of one email at most, in this test
    assert refused.status_code == 403 and refused.json["type"].endswith("/account-suspended")
    assert refresh(api, pair).status_code == 403
    wrong = api.call("POST", "/v1/auth/login", None, {"email": "ann@example.com", "password": "not the password"})
    assert wrong.status_code == 401, "a wrong password learns nothing of the account's status"

    reinstated = cli("user", "reinstate", "ann@example.com", "--by", "sue")
    assert reinstated.exit_code == 0, reinstated.output
    after = datetime.now(UTC)
    assert api.call("GET", "/v1/users/me", pair["access_token"]).status_code == 401, "no token from before"
    again = log_in(api, "ann@example.com")
    assert again.status_code == 200, again.text
    assert place(api, again.json["access_token"]).status_code == 202
    assert refresh(api, pair).status_code == 401, "nor a session from before"
    assert refresh(api, again.json).status_code == 200
    assert status_in_db(settings, ann) == "active"

    closed = cli("user", "close", "ann@example.com", "--reason", "asked to", "--by", "sue", "--json")
    assert closed.exit_code == 0, closed.output
    assert json.loads(closed.output)["status"] == "closed"
    assert log_in(api, "ann@example.com").json["type"].endswith("/account-closed")
    stays = cli("user", "reinstate", "ann@example.com")
    assert stays.exit_code == 2 and "a closed account stays closed" in stays.output

    pipeline = UsersPipeline(settings)
    events = pipeline.catch_up()
    pipeline.close()
    changes = [e for e in events if e.type.startswith("Account")]
    assert [e.type for e in changes] == ["AccountSuspended", "AccountReinstated", "AccountClosed"]
    suspension = audit_entry(changes[0], ann.encode())
    assert suspension["what"] == {
        "user_id": ann,
        "reason": "chargebacks",
        "by": "sue",
        "os_user": getpass.getuser(),
    }
    assert before <= suspension["occurred_at"] <= after
    support = api.token("sue", "support")
    shown = eventually(
        lambda: (a := api.call("GET", f"/v1/users/{ann}", support)).status_code == 200 and a.json,
        5,
        "the account never reached the replica",
    )
    assert shown["status"] == "closed", "the read models show the status"


def test_bad_input_or_a_broker_that_cannot_take_the_command_changes_nothing(
    system: tuple[Api, Cli, Settings],
) -> None:
    api, cli, settings = system
    kim = register(api, "kim@example.com")
    cases = {
        ("user", "suspend", "nobody@example.com", "--reason", "r"): "no account with the email",
        ("user", "suspend", "kim@example.com", "--reason", " "): "--reason: why the account is suspended",
        ("user", "suspend", "kim@example.com"): "Missing option '--reason'",
        ("user", "close", "kim@example.com", "--reason", "x" * 501): "at most 500 printable characters",
    }
    for argv, message in cases.items():
        result = cli(*argv)
        assert result.exit_code == 2, (argv, result.output)
        assert message in result.output, (argv, result.output)
    already = cli("user", "reinstate", "kim@example.com")
    assert already.exit_code == 0 and "is active already; nothing changed" in already.output
    down = Cli({**settings.to_env(), "SHOP_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"})
    result = down("user", "suspend", "kim@example.com", "--reason", "r")
    assert result.exit_code == 1, result.output
    assert "did not take the command" in result.output and "nothing changed" in result.output
    assert status_in_db(settings, kim) == "active"
    assert api.redis.get(ACCOUNT_STATE.format(settings.redis_prefix, user_id=kim)) is None
    assert log_in(api, "kim@example.com").status_code == 200
    pipeline = UsersPipeline(settings)
    assert [e.type for e in pipeline.catch_up()] == ["UserRegistered"], "nothing was recorded"
    pipeline.close()
