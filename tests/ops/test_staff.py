"""`shopstream user grant|revoke`: the only way to a staff role, audited, picked up at the next refresh.

On the real stack: the ingress in process, the users flow and the MongoDB sink as processes in a
scope of the test's own, the CLI in process under the same names.
"""

from __future__ import annotations

import getpass
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import msgspec
import psycopg
import pymongo
import pytest

from ingress import openapi, routes
from ingress.auth.tokens import KeyRing
from ingress.bus import KafkaBus
from ops.kafka_admin import read_to_end
from tests.support.api import Api
from tests.support.cli import Cli
from tests.support.processes import BIN, free_port, spawn, stop_all
from tests.support.scope import Scope
from tests.support.sinks import SinkHarness
from topology import processes
from topology.envelope import decode
from topology.settings import PROJECT_ROOT, Settings
from topology.stores import AUDIT
from topology.topics import USER_COMMANDS

PASSWORD = "correct horse"
ROLE_FIELDS = {"role", "roles"}


# No HTTP route gives a role.


def _property_names(schema: Any, components: dict[str, Any], seen: set[str]) -> set[str]:
    """Every property name a JSON Schema (following its $refs into ``components``) can hold."""
    if isinstance(schema, list):
        return set().union(*(_property_names(s, components, seen) for s in schema)) if schema else set()
    if not isinstance(schema, dict):
        return set()
    names: set[str] = set()
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name not in seen:
            seen.add(name)
            names |= _property_names(components[name], components, seen)
    names |= set(schema.get("properties", {}))
    for value in schema.values():
        names |= _property_names(value, components, seen)
    return names


def test_no_route_accepts_roles() -> None:
    document = openapi.document()
    components = document["components"]["schemas"]
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert {(r.method, r.path) for r in processes.ROUTES} <= documented, "every public route is in the document"
    for path, item in document["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody", {}).get("content", {})
            taken = _property_names(list(body.values()), components, set())
            taken |= {p["name"] for p in operation.get("parameters", [])}
            assert not taken & ROLE_FIELDS, f"{method.upper()} {path} takes {sorted(taken & ROLE_FIELDS)}"
    for op in routes.OPERATIONS:
        for struct in (op.request, op.query):
            if struct is not None:
                assert not {f.name for f in msgspec.structs.fields(struct)} & ROLE_FIELDS, op.route.path
    # The ingress never sends a role change: its source names neither command.
    for source in (PROJECT_ROOT / "ingress").rglob("*.py"):
        text = source.read_text()
        assert "GrantRole" not in text and "RevokeRole" not in text, source


# The CLI against the real stack.


@dataclass
class Staffed:
    api: Api
    cli: Cli
    settings: Settings
    harness: SinkHarness


@pytest.fixture
def system(settings: Settings, tmp_path: Path) -> Iterator[Staffed]:
    """The users flow and the MongoDB sink running in a scope; the ingress in process; the CLI under the scope."""
    harness = SinkHarness(settings, tmp_path)
    private = harness.settings
    env = {**os.environ, **private.to_env()}
    flow = spawn([str(BIN / "shopstream"), "flow", "users"], env, tmp_path / "users.log", cwd=PROJECT_ROOT)
    bus = KafkaBus(private)
    try:
        harness.start("mongo")
        api = Api(private, KeyRing(private.jwt_issuer, private.jwt_audience), bus)
        yield Staffed(api, Cli(private.to_env()), private, harness)
    finally:
        stop_all([flow])
        bus.close()
        harness.close()


@pytest.fixture
def scope_cli(ns: Scope) -> tuple[Cli, Settings]:
    """The CLI under a scope with the topology applied and the schema migrated (no processes)."""
    ns.apply_topology()
    ns.migrate()
    return Cli(ns.settings.to_env()), ns.settings


def register(api: Api, email: str, name: str) -> str:
    answer = api.call("POST", "/v1/users", None, {"email": email, "name": name, "password": PASSWORD})
    assert answer.status_code == 202, answer.text
    return str(answer.json["user_id"])


def log_in(api: Api, email: str) -> dict[str, str]:
    answer = api.call("POST", "/v1/auth/login", None, {"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return dict(answer.json)


def refresh(api: Api, pair: dict[str, str]) -> dict[str, str]:
    answer = api.call("POST", "/v1/auth/refresh", None, {"refresh_token": pair["refresh_token"]})
    assert answer.status_code == 200, answer.text
    return dict(answer.json)


def roles_of(pair: dict[str, str]) -> set[str]:
    return set(jwt.decode(pair["access_token"], options={"verify_signature": False})["roles"])


def audit_entries(settings: Settings, user_id: str, timeout_s: float = 120) -> list[dict[str, Any]]:
    """The role changes the audit log holds for the user, once there are two (a grant and a revoke)."""
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(settings.mongo_url, tz_aware=True)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            found = [
                entry
                for doc in client[settings.mongo_database][AUDIT.name].find()
                for entry in doc.get("events", [doc])  # a document holds one entry, or a bucket of them
                if entry["type"] in ("RoleGranted", "RoleRevoked") and entry["what"]["user_id"] == user_id
            ]
            if len(found) >= 2:
                return sorted(found, key=lambda e: e["seq"])
            assert time.monotonic() < deadline, f"the audit log holds {found} after {timeout_s} s"
            time.sleep(0.5)
    finally:
        client.close()


@pytest.mark.stack
def test_a_granted_role_reads_another_customers_order_until_it_is_revoked_and_both_are_audited(
    system: Staffed,
) -> None:
    api, cli = system.api, system.cli
    ann = register(api, "ann@example.com", "Ann")
    sue = register(api, "sue@example.com", "Sue")
    api.sql(
        "INSERT INTO orders (order_id, customer_id, status, total_amount, currency, placed_at, updated_at, version)"
        " VALUES ('o-ann', %s, 'confirmed', 1800, 'EUR', now(), now(), 2)",
        ann,
    )
    session = log_in(api, "sue@example.com")
    assert roles_of(session) == {"customer"}
    order = "/v1/orders/o-ann"
    assert api.call("GET", order, session["access_token"]).status_code == 404, "a customer does not see it"

    before = datetime.now(UTC)
    granted = cli("user", "grant", "sue@example.com", "--role", "support", "--by", "alice")
    assert granted.exit_code == 0, granted.output
    assert "granted support to sue@example.com" in granted.output and "by alice" in granted.output
    session = refresh(api, session)  # the session she had before the grant
    assert roles_of(session) == {"customer", "support"}
    read = api.call("GET", order, session["access_token"])
    assert read.status_code == 200, read.text
    assert read.json["customer_id"] == ann
    assert roles_of(log_in(api, "sue@example.com")) == {"customer", "support"}

    revoked = cli("user", "revoke", "SUE@example.com", "--role", "support", "--by", "alice")
    assert revoked.exit_code == 0, revoked.output
    after = datetime.now(UTC)
    session = refresh(api, session)
    assert roles_of(session) == {"customer"}, "the revoke holds from the next refresh"
    assert api.call("GET", order, session["access_token"]).status_code == 404

    grant, revoke = audit_entries(system.settings, sue)
    for entry, kind in ((grant, "RoleGranted"), (revoke, "RoleRevoked")):
        assert entry["type"] == kind
        assert entry["what"]["role"] == "support"
        assert entry["what"]["by"] == "alice"
        assert entry["what"]["os_user"] == getpass.getuser()
        assert before <= entry["occurred_at"] <= after
    assert grant["what"]["roles"] == ["customer", "support"]
    assert revoke["what"]["roles"] == ["customer"]
    assert grant["occurred_at"] <= revoke["occurred_at"]


def credentials(settings: Settings, user_id: str, email: str) -> None:
    with psycopg.connect(settings.pg_url, autocommit=True, options=f"-c search_path={settings.pg_schema}") as db:
        db.execute(
            "INSERT INTO credentials (user_id, email, password_hash) VALUES (%s, %s, 'not a hash')", (user_id, email)
        )


def roles_in_db(settings: Settings, user_id: str) -> list[str]:
    with psycopg.connect(settings.pg_url, options=f"-c search_path={settings.pg_schema}") as db:
        row = db.execute("SELECT roles FROM credentials WHERE user_id = %s", (user_id,)).fetchone()
    assert row is not None
    return list(row[0])


def role_commands(settings: Settings) -> list[str]:
    topic = USER_COMMANDS.name_for(settings.topic_prefix)
    return [decode(m.value()).type for m in read_to_end(settings, [topic])]


@pytest.mark.stack
def test_bad_input_is_refused_with_exit_2_and_changes_nothing(scope_cli: tuple[Cli, Settings]) -> None:
    cli, settings = scope_cli
    credentials(settings, "u-kim", "kim@example.com")
    cases = {
        ("user", "grant", "nobody@example.com", "--role", "support"): "no account with the email",
        ("user", "grant", "kim@example.com", "--role", "root"): "no staff role 'root'; pick support or admin",
        ("user", "revoke", "kim@example.com", "--role", "customer"): "no staff role 'customer'",
        ("user", "grant", "kim@example.com", "--role", "admin", "--by", " "): "--by: 1 to 128 printable",
        ("user", "grant", "kim@example.com"): "Missing option '--role'",
    }
    for argv, message in cases.items():
        result = cli(*argv)
        assert result.exit_code == 2, (argv, result.output)
        assert message in result.output, (argv, result.output)
        assert "Traceback" not in result.output
    assert roles_in_db(settings, "u-kim") == ["customer"]
    assert role_commands(settings) == []


@pytest.mark.stack
def test_granting_twice_changes_nothing_the_second_time(scope_cli: tuple[Cli, Settings]) -> None:
    cli, settings = scope_cli
    credentials(settings, "u-kim", "kim@example.com")
    first = cli("user", "grant", "kim@example.com", "--role", "admin", "--json")
    assert first.exit_code == 0, first.output
    change = json.loads(first.output)
    assert change["changed"] and change["roles"] == ["customer", "admin"]
    assert change["by"] == change["os_user"] == getpass.getuser(), "without --by, the OS user is the operator"
    again = cli("user", "grant", "kim@example.com", "--role", "admin")
    assert again.exit_code == 0, again.output
    assert "already has the admin role; nothing changed" in again.output
    absent = cli("user", "revoke", "kim@example.com", "--role", "support")
    assert absent.exit_code == 0 and "does not have the support role; nothing changed" in absent.output
    assert roles_in_db(settings, "u-kim") == ["customer", "admin"]
    assert role_commands(settings) == ["GrantRole"], "one command: the one change"


@pytest.mark.stack
def test_a_broker_that_cannot_take_the_command_leaves_the_roles_as_they_were(
    scope_cli: tuple[Cli, Settings],
) -> None:
    _, settings = scope_cli
    credentials(settings, "u-kim", "kim@example.com")
    down = Cli({**settings.to_env(), "SHOP_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"})
    result = down("user", "grant", "kim@example.com", "--role", "support")
    assert result.exit_code == 1, result.output
    assert "did not take the command" in result.output and "nothing changed" in result.output
    assert "Traceback" not in result.output
    assert roles_in_db(settings, "u-kim") == ["customer"]


def test_users_flow_records_every_role_change_it_is_told_of() -> None:
    from flows.users import logic
    from topology.messages import GrantRole, RegisterUser, RoleGranted

    grant = GrantRole(user_id="u1", role="admin", roles=("customer", "admin"), by="alice", os_user="root")
    at = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    user, sends = logic.handle(None, grant, "c1", at)
    assert user is None, "a user the flow never saw registered stays unknown"
    assert [s.message for s in sends] == [
        RoleGranted(user_id="u1", role="admin", roles=("customer", "admin"), by="alice", os_user="root")
    ]
    user, _ = logic.handle(None, RegisterUser(user_id="u1", email="u1@example.com", name="U"), "c0", at)
    user, sends = logic.handle(user, grant, "c1", at)
    assert len(sends) == 1
    assert logic.handle(user, grant, "c1", at)[1] == [], "a repeated command records nothing twice"
