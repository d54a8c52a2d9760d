"""The key ring's verification, with its cache of verified tokens, against one clock; the ring on a key folder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from ingress.auth.keys import KeyFolder, load_keys
from ingress.auth.tokens import InvalidToken, KeyRing, Principal
from ops import keys
from topology.settings import Settings
from topology.signing_keys import MANIFEST, RETIRE_GRACE, KeyFolderError

ANN = Principal("ann", "user", frozenset({"customer"}))
TTL = timedelta(seconds=900)


def ring_at(now: list[datetime]) -> KeyRing:
    return KeyRing("shopstream", "shopstream-api", clock=lambda: now[0])


def test_a_cached_token_expires_like_a_fresh_one() -> None:
    now = [datetime.now(UTC)]
    ring = ring_at(now)
    token = ring.issue(ANN, timedelta(minutes=15), now=now[0])
    assert ring.verify(token).subject == "ann"
    assert token in ring.verified
    now[0] += timedelta(minutes=15, seconds=4)  # inside the 5 s leeway
    assert ring.verify(token).subject == "ann"
    now[0] += timedelta(seconds=2)
    with pytest.raises(InvalidToken, match="token expired"):
        ring.verify(token)
    assert token not in ring.verified
    fresh = ring_at(now)  # the same answer without a cache in front
    fresh.current = ring.current
    with pytest.raises(InvalidToken, match="token expired"):
        fresh.verify(token)


def test_a_token_not_valid_yet_is_refused_and_not_cached() -> None:
    now = [datetime.now(UTC)]
    ring = ring_at(now)
    token = ring.issue(ANN, timedelta(minutes=15), now=now[0] + timedelta(minutes=1))
    with pytest.raises(InvalidToken, match="not valid yet"):
        ring.verify(token)
    assert token not in ring.verified
    now[0] += timedelta(seconds=56)  # within the leeway of nbf
    assert ring.verify(token).subject == "ann"


def test_a_cached_token_of_a_retired_key_is_refused() -> None:
    now = [datetime.now(UTC)]
    ring = ring_at(now)
    token = ring.issue(ANN, timedelta(minutes=15), now=now[0])
    ring.verify(token)
    ring.rotate(keep=1)
    assert ring.verify(token).subject == "ann", "the previous key still verifies"
    ring.rotate(keep=0)
    with pytest.raises(InvalidToken, match="unknown signing key"):
        ring.verify(token)


def test_only_the_exact_token_hits_and_the_cache_is_bounded() -> None:
    now = [datetime.now(UTC)]
    ring = ring_at(now)
    ring.cache_size = 3
    token = ring.issue(ANN, timedelta(minutes=15), now=now[0])
    ring.verify(token)
    head, payload, signature = token.split(".")
    tampered = ".".join((head, payload, signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")))
    with pytest.raises(InvalidToken):
        ring.verify(tampered)
    for n in range(5):
        ring.verify(ring.issue(Principal(f"u{n}", "user", frozenset({"customer"})), timedelta(minutes=1), now=now[0]))
        assert len(ring.verified) <= 3


# The ring on the shared key folder (``ops.keys`` writes it, ``ingress.auth.keys`` reads it).


def folder_settings(folder: Path) -> Settings:
    return Settings(keys_dir=folder, access_token_ttl_s=900)


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def test_an_empty_key_folder_refuses_to_load_and_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(KeyFolderError, match=r"no signing keys in .*\n  fix: `shopstream keys init`"):
        load_keys(folder_settings(tmp_path / "keys"))
    (tmp_path / "legacy").mkdir()
    (tmp_path / "legacy" / "0123456789abcdef.pem").write_bytes(b"")
    with pytest.raises(KeyFolderError, match="holds key files but no manifest"):
        load_keys(folder_settings(tmp_path / "legacy"))


def test_rotation_signs_with_the_new_key_verifies_the_old_then_retires_it(tmp_path: Path) -> None:
    settings = folder_settings(tmp_path / "keys")
    t0 = datetime.now(UTC)
    now = [t0]
    keys.init(settings, t0)
    ring = KeyRing.following(
        settings.jwt_issuer, settings.jwt_audience, KeyFolder(settings.signing_keys_dir, TTL), clock=lambda: now[0]
    )
    first = ring.current.kid
    # A token longer-lived than the access-token lifetime: only the key's retirement can end it.
    old = ring.issue(ANN, timedelta(days=1), now=t0)
    assert kid_of(old) == first

    rotation = keys.rotate(settings, t0)
    ring.follow(every_s=0)
    new = ring.issue(ANN, timedelta(days=1), now=t0)
    assert kid_of(new) == rotation.signing.kid != first
    assert ring.verify(old).subject == "ann", "the previous key still verifies"
    assert {k["kid"] for k in ring.jwks()["keys"]} == {first, rotation.signing.kid}

    assert rotation.previous_retires == t0 + TTL + RETIRE_GRACE
    now[0] = rotation.previous_retires - timedelta(seconds=1)
    assert ring.verify(old).subject == "ann"
    now[0] = rotation.previous_retires
    with pytest.raises(InvalidToken, match="unknown signing key"):
        ring.verify(old)  # it was cached: the cache answers as the ring does
    assert ring.verify(new).subject == "ann"
    assert {k["kid"] for k in ring.jwks()["keys"]} == {rotation.signing.kid}


def test_a_second_instance_takes_a_rotated_key_at_its_first_token(tmp_path: Path) -> None:
    settings = folder_settings(tmp_path / "keys")
    keys.init(settings, datetime.now(UTC))
    a, b = load_keys(settings), load_keys(settings)
    keys.rotate(settings, datetime.now(UTC))
    a.follow(every_s=0)
    token = a.issue(ANN, timedelta(minutes=5))
    assert kid_of(token) != b.current.kid, "b has not looked at the folder since"
    assert b.verify(token).subject == "ann", "an unknown kid makes b look at once"
    assert b.current.kid == kid_of(token)


def test_a_broken_manifest_leaves_a_running_ring_as_it_was(tmp_path: Path) -> None:
    settings = folder_settings(tmp_path / "keys")
    keys.init(settings, datetime.now(UTC))
    ring = load_keys(settings)
    signing = ring.current.kid
    (settings.signing_keys_dir / MANIFEST).write_text("{not json")
    ring.follow(every_s=0)
    assert ring.current.kid == signing
    assert ring.verify(ring.issue(ANN, timedelta(minutes=5))).subject == "ann"
    with pytest.raises(KeyFolderError, match="is not a key manifest"):
        load_keys(settings)


def test_a_key_file_others_may_read_is_refused(tmp_path: Path) -> None:
    settings = folder_settings(tmp_path / "keys")
    _, manifest = keys.init(settings, datetime.now(UTC))
    assert manifest.signing is not None
    (settings.signing_keys_dir / manifest.signing.file).chmod(0o644)
    with pytest.raises(KeyFolderError, match="chmod 600"):
        load_keys(settings)
