"""The GCRA limit in Redis, with the logout check it shares a round trip with."""

from __future__ import annotations

import pytest
import redis

from ingress.ratelimit import Limit, RateLimiter
from tests.conftest import Namespace


@pytest.mark.stack
def test_the_limit_and_the_revocation_check_survive_a_redis_that_forgot_its_scripts(
    redis_client: redis.Redis, ns: Namespace
) -> None:
    limiter = RateLimiter(redis_client, ns.key_prefix)
    redis_client.script_flush()  # as after a Redis restart without persistence of scripts
    first, revoked = limiter.check_and_exists("user:ann", "write", Limit(1, 2), f"{ns.key_prefix}revoked:t1")
    assert first.allowed and first.remaining == 1 and not revoked
    redis_client.set(f"{ns.key_prefix}revoked:t1", "1")
    second, revoked = limiter.check_and_exists("user:ann", "write", Limit(1, 2), f"{ns.key_prefix}revoked:t1")
    assert second.allowed and second.remaining == 0 and revoked
    third, _ = limiter.check_and_exists("user:ann", "write", Limit(1, 2), f"{ns.key_prefix}revoked:t1")
    assert not third.allowed and third.retry_after_s >= 1, "the burst of 2 is spent: counted once per call"
