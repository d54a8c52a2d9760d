"""Rate limits in Redis: GCRA (the generic cell rate algorithm), atomic in one round trip.

Each (caller, route class) has a rate and a burst. One Lua call per request checks and
updates the theoretical arrival time; the answer says whether the request passes, how many
more would pass now, and when to come back (``Retry-After``, ``RateLimit-*`` headers). The
same call can also say whether a second key exists (a logged-out token's revocation), so a
request costs one Redis command.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import redis

from topology.stores import RATE_LIMIT

# KEYS[1]: the caller's cell; KEYS[2] (optional): a key whose existence is reported (the request
# is counted either way); ARGV: emission interval (ms), burst tolerance (ms).
# Uses the server's clock, so every gunicorn worker and host agrees.
GCRA = """
local flagged = 0
if KEYS[2] then flagged = redis.call('EXISTS', KEYS[2]) end
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance - interval
if now < allow_at then
  return {0, 0, allow_at - now, tat - now, flagged}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now + interval))
local remaining = math.floor((tolerance - (new_tat - now - interval)) / interval)
return {1, remaining, 0, new_tat - now, flagged}
"""


@dataclass(frozen=True)
class Limit:
    per_second: float
    burst: int

    @property
    def interval_ms(self) -> float:
        return 1000.0 / self.per_second


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    retry_after_s: int
    reset_s: int
    #: the ``flag`` key passed to ``check`` exists (False when none was passed)
    flagged: bool = False


class RateLimiter:
    """GCRA checks, each one EVALSHA (the script is loaded again when Redis forgot it)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.sha = hashlib.sha1(GCRA.encode(), usedforsecurity=False).hexdigest()  # what EVALSHA names it by

    def check(self, caller: str, route_class: str, limit: Limit, flag: str | None = None) -> Verdict:
        """Count one request of ``caller`` against ``limit``; ``flag``: a key whose existence the verdict reports."""
        keys = [RATE_LIMIT.format(self.prefix, route_class=route_class, caller=caller), *([flag] if flag else [])]
        args = (limit.interval_ms, limit.interval_ms * (limit.burst - 1))
        try:
            answer = self.client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            self.client.script_load(GCRA)  # a restarted or flushed Redis forgot it
            answer = self.client.evalsha(self.sha, len(keys), *keys, *args)
        allowed, remaining, retry_ms, reset_ms, flagged = answer
        return Verdict(
            allowed=bool(allowed),
            limit=limit.burst,
            remaining=max(0, int(remaining)),
            retry_after_s=math.ceil(float(retry_ms) / 1000),
            reset_s=math.ceil(float(reset_ms) / 1000),
            flagged=bool(flagged),
        )
