"""The GCRA limit in Redis, with the logout check it shares a command with."""

from __future__ import annotations

import pytest
import redis

from ingress.ratelimit import Limit, RateLimiter
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
