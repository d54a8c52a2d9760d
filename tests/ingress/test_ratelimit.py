"""The GCRA limit in Redis, with the logout check it shares a command with."""

from __future__ import annotations

import pytest
import redis

from ingress.ratelimit import Cell, Limit, RateLimiter
from tests.support.scope import Scope


@pytest.mark.stack
def test_the_limit_and_the_revocation_check_survive_a_redis_that_forgot_its_scripts(
    redis_client: redis.Redis, ns: Scope
) -> None:
    limiter = RateLimiter(redis_client, ns.key_prefix)
    revoked = f"{ns.key_prefix}revoked:t1"
    redis_client.script_flush()  # as after a Redis restart without persistence of scripts
    first = limiter.check("user:ann", "write", Limit(1, 2), flag=revoked)
    assert first.allowed and first.remaining == 1 and not first.flagged
    redis_client.set(revoked, "1")
    second = limiter.check("user:ann", "write", Limit(1, 2), flag=revoked)
    assert second.allowed and second.remaining == 0 and second.flagged
    redis_client.script_flush()
    third = limiter.check("user:ann", "write", Limit(1, 2), flag=revoked)
    assert not third.allowed and third.retry_after_s >= 1, "the burst of 2 is spent: counted once per call"
    assert third.flagged


@pytest.mark.stack
def test_without_a_flag_key_nothing_is_flagged_and_callers_have_their_own_cells(
    redis_client: redis.Redis, ns: Scope
) -> None:
    limiter = RateLimiter(redis_client, ns.key_prefix)
    assert [limiter.check("user:bob", "read", Limit(1, 1)).allowed for _ in range(2)] == [True, False]
    other = limiter.check("user:cid", "read", Limit(1, 1))
    assert other.allowed and not other.flagged
    assert limiter.check("user:bob", "write", Limit(1, 1)).allowed, "route classes are counted apart"


@pytest.mark.stack
def test_a_request_counts_in_every_cell_or_in_none(redis_client: redis.Redis, ns: Scope) -> None:
    limiter = RateLimiter(redis_client, ns.key_prefix)
    address, caller = Cell("ip:203.0.113.1", "any", Limit(0.001, 3)), Cell("user:ann", "write", Limit(0.001, 1))
    first = limiter.check_all([address, caller])
    assert first.allowed and first.cell == caller and first.remaining == 0, "the tightest cell is reported"
    refused = limiter.check_all([address, caller])
    assert not refused.allowed and refused.cell == caller and refused.retry_after_s >= 1
    assert refused.headers["Retry-After"] == str(refused.retry_after_s)
    alone = limiter.check_all([address])
    assert alone.allowed and alone.remaining == 1, "the refused request was not counted against the address"
    assert limiter.check_all([address, Cell("user:bob", "write", Limit(0.001, 5))]).allowed
    assert not limiter.check_all([address]).allowed, "three in the address's cell: ann's first, alone, bob's"
