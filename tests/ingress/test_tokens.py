"""The key ring's verification, with its cache of verified tokens, against one clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingress.auth.tokens import InvalidToken, KeyRing, Principal

ANN = Principal("ann", "user", frozenset({"customer"}))


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
