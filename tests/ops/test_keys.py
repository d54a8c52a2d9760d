"""`shopstream keys ...` on a key folder of the test's own, and ingress instances (gunicorn) sharing it.

Two gunicorn masters on different ports read one folder: each accepts the other's tokens, and a
rotation reaches both without a restart. A folder without a key stops gunicorn, saying how to
make one.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest

from ops import keys
from tests.support.cli import Cli
from tests.support.processes import BIN, free_port, spawn, start_gunicorn, stop_all
from tests.support.scope import Scope
from topology.settings import PROJECT_ROOT, Settings
from topology.signing_keys import MANIFEST, RETIRE_GRACE


def folder_cli(folder: Path) -> Cli:
    return Cli({"SHOP_KEYS_DIR": str(folder)})


def listed(cli: Cli) -> list[dict[str, str]]:
    result = cli("keys", "list", "--json")
    assert result.exit_code == 0, result.output
    rows: list[dict[str, str]] = json.loads(result.output)
    return rows


def test_init_makes_one_private_key_once(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    cli = folder_cli(folder)
    first = cli("keys", "init")
    assert first.exit_code == 0, first.output
    assert "(created)" in first.output
    again = cli("keys", "init")
    assert again.exit_code == 0 and "(already there)" in again.output
    [row] = listed(cli)
    assert row["state"] == "signing" and row["retires"] is None
    assert row["kid"] in first.output
    for path in (folder / f"{row['kid']}.pem", folder / MANIFEST):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert not list(folder.glob(".*.tmp")), "no temporary file is left behind"


def test_rotate_lists_signing_and_verifying_and_retires_after_the_token_lifetime(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    cli = folder_cli(folder)
    assert cli("keys", "init").exit_code == 0
    [first] = listed(cli)
    rotated = cli("keys", "rotate", "--json")
    assert rotated.exit_code == 0, rotated.output
    summary = json.loads(rotated.output)
    assert summary["previous"] == first["kid"] and summary["deleted"] == []
    rows = listed(cli)
    assert [(r["kid"], r["state"]) for r in rows] == [(summary["signing"], "signing"), (first["kid"], "verifying")]
    retires = datetime.fromisoformat(summary["previous_retires"])
    ttl = timedelta(seconds=Settings().access_token_ttl_s)
    assert timedelta(0) < retires - datetime.now(UTC) <= ttl + RETIRE_GRACE

    # Rotations long enough ago that the first key's tokens have all expired.
    long_ago = datetime.now(UTC) - 3 * (ttl + RETIRE_GRACE)
    fresh = tmp_path / "fresh"
    settings = Settings(keys_dir=fresh)
    keys.init(settings, long_ago)
    keys.rotate(settings, long_ago)
    oldest = keys.listing(settings, datetime.now(UTC))[-1]
    assert oldest.state == "retired"
    assert (fresh / f"{oldest.kid}.pem").exists(), "a retired key's file stays until the next rotation"
    rotation = keys.rotate(settings, datetime.now(UTC))
    assert rotation.deleted == (oldest.kid,)
    assert not (fresh / f"{oldest.kid}.pem").exists()
    states = [r["state"] for r in listed(folder_cli(fresh))]
    assert states == ["signing", "verifying", "retired"]


def test_keys_list_and_rotate_on_an_empty_folder_name_the_fix(tmp_path: Path) -> None:
    cli = folder_cli(tmp_path / "nothing")
    for command in (("keys", "list"), ("keys", "rotate")):
        result = cli(*command)
        assert result.exit_code == 2, result.output
        assert "no signing keys in" in result.output and "shopstream keys init" in result.output
        assert "Traceback" not in result.output


def test_init_adopts_key_files_without_a_manifest(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    keys.init(Settings(keys_dir=folder), datetime.now(UTC))
    [kid] = [p.stem for p in folder.glob("*.pem")]
    (folder / MANIFEST).unlink()
    (folder / f"{kid}.pem").chmod(0o644)
    assert folder_cli(folder)("keys", "init").exit_code == 0
    [row] = listed(folder_cli(folder))
    assert (row["kid"], row["state"]) == (kid, "signing")
    assert stat.S_IMODE((folder / f"{kid}.pem").stat().st_mode) == 0o600


# Ingress instances on the real stack.


@pytest.fixture
def private(ns: Scope) -> Settings:
    ns.apply_topology()
    ns.migrate()
    return ns.settings


def instance_env(settings: Settings, folder: Path) -> dict[str, str]:
    return {
        **settings.to_env(),
        "SHOP_KEYS_DIR": str(folder),
        "SHOP_INGRESS_WORKERS": "2",
        "SHOP_INGRESS_METRICS_PORT": str(free_port()),
        # every login here comes from one address
        "SHOP_RATE_CREDENTIALS_PER_S": "50",
        "SHOP_RATE_CREDENTIALS_BURST": "100",
    }


@pytest.fixture
def two_instances(private: Settings, tmp_path: Path) -> Iterator[tuple[Path, str, str]]:
    folder = tmp_path / "keys"
    assert folder_cli(folder)("keys", "init").exit_code == 0
    processes: list[subprocess.Popen[bytes]] = []
    try:
        bases = []
        for name in ("a", "b"):
            port = free_port()
            env = instance_env(private, folder)
            log = tmp_path / f"{name}.log"
            processes.append(start_gunicorn("ingress.wsgi:app_from_env()", env, port, log, timeout_s=120))
            bases.append(f"http://127.0.0.1:{port}")
        yield folder, bases[0], bases[1]
    finally:
        stop_all(processes)


def log_in(base: str, email: str) -> str:
    body = {"email": email, "password": "correct horse"}
    token = httpx.post(f"{base}/v1/auth/login", json=body, timeout=10).json()["access_token"]
    return str(token)


def notifications(base: str, token: str) -> int:
    """The status of a route that needs a valid user token and nothing the flows write."""
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{base}/v1/users/me/notifications", headers=headers, timeout=10).status_code


@pytest.mark.stack
def test_two_instances_accept_each_others_tokens_and_follow_a_rotation(
    two_instances: tuple[Path, str, str],
) -> None:
    folder, a, b = two_instances
    email = "kim@example.com"
    registered = httpx.post(f"{a}/v1/users", json={"email": email, "name": "Kim", "password": "correct horse"})
    assert registered.status_code == 202, registered.text
    from_a, from_b = log_in(a, email), log_in(b, email)
    assert jwt.get_unverified_header(from_a)["kid"] == jwt.get_unverified_header(from_b)["kid"]
    assert notifications(b, from_a) == 200, "b accepts a's token"
    assert notifications(a, from_b) == 200, "a accepts b's token"

    rotated = folder_cli(folder)("keys", "rotate", "--json")
    assert rotated.exit_code == 0, rotated.output
    new_kid = json.loads(rotated.output)["signing"]
    # Each instance looks at the folder every second: a's next tokens carry the new kid.
    deadline = datetime.now(UTC) + timedelta(seconds=30)
    while jwt.get_unverified_header(fresh := log_in(a, email))["kid"] != new_kid:
        assert datetime.now(UTC) < deadline, "a never took the rotated key"
        time.sleep(0.3)
    assert notifications(b, fresh) == 200, "b verifies the new key's tokens"
    assert notifications(a, from_b) == 200 and notifications(b, from_a) == 200, "the old key still verifies"
    both = {new_kid, jwt.get_unverified_header(from_a)["kid"]}
    for base in (a, b):  # every worker publishes both within a second of the rotation
        while {k["kid"] for k in httpx.get(f"{base}/.well-known/jwks.json", timeout=5).json()["keys"]} != both:
            assert datetime.now(UTC) < deadline, f"{base} never published both keys"
            time.sleep(0.3)


@pytest.mark.stack
def test_an_instance_with_an_empty_key_folder_refuses_to_start(private: Settings, tmp_path: Path) -> None:
    folder, log = tmp_path / "empty", tmp_path / "gunicorn.log"
    folder.mkdir()
    env = {**instance_env(private, folder), "SHOP_INGRESS_PORT": str(free_port())}
    argv = [str(BIN / "gunicorn"), "-c", "ingress/gunicorn.conf.py", "ingress.wsgi:app_from_env()"]
    process = spawn(argv, {**os.environ, **env}, log, cwd=PROJECT_ROOT)
    try:
        code = process.wait(60)
    finally:
        stop_all([process])
    text = log.read_text()
    assert code != 0, text
    assert f"the ingress cannot start: no signing keys in {folder}" in text
    assert "fix: `shopstream keys init`" in text
    assert "Traceback" not in text
    assert not any(folder.iterdir()), "the ingress creates no key"
