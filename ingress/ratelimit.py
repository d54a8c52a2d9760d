"""Rate limits in Redis: GCRA (the generic cell rate algorithm), atomic in one round trip.

Each (caller, route class) has a rate and a burst. One Lua call per request checks and
updates the theoretical arrival time; the answer says whether the request passes, how many
more would pass now, and when to come back (``Retry-After``, ``RateLimit-*`` headers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import redis

# KEYS[1]: the caller's cell; ARGV: emission interval (ms), burst tolerance (ms).
# Uses the server's clock, so every gunicorn worker and host agrees.
GCRA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance - interval
if now < allow_at then
  return {0, 0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now + interval))
local remaining = math.floor((tolerance - (new_tat - now - interval)) / interval)
return {1, remaining, 0, new_tat - now}
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


class RateLimiter:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.script = client.register_script(GCRA)

    def _call(self, caller: str, route_class: str, limit: Limit) -> tuple[list[str], list[float]]:
        tolerance = limit.interval_ms * (limit.burst - 1)
        return [f"{self.prefix}rl:{route_class}:{caller}"], [limit.interval_ms, tolerance]

    def check(self, caller: str, route_class: str, limit: Limit) -> Verdict:
        keys, args = self._call(caller, route_class, limit)
        return self._verdict(self.script(keys=keys, args=args), limit)

    def check_and_exists(self, caller: str, route_class: str, limit: Limit, key: str) -> tuple[Verdict, bool]:
        """The verdict, and whether ``key`` exists (a revocation, say), in one round trip."""
        keys, args = self._call(caller, route_class, limit)

        def run() -> list[Any]:
            # EVALSHA by hand: redis-py's Script in a pipeline asks SCRIPT EXISTS first, a second round trip
            pipe = self.client.pipeline(transaction=False)
            pipe.exists(key)
            pipe.evalsha(self.script.sha, len(keys), *keys, *args)
            return pipe.execute()

        try:
            found, answer = run()
        except redis.exceptions.NoScriptError:
            self.client.script_load(GCRA)  # a restarted or flushed Redis forgot it
            found, answer = run()
        return self._verdict(answer, limit), bool(found)

    @staticmethod
    def _verdict(answer: list[int], limit: Limit) -> Verdict:
        allowed, remaining, retry_ms, reset_ms = answer
        return Verdict(
            allowed=bool(allowed),
            limit=limit.burst,
            remaining=max(0, int(remaining)),
            retry_after_s=math.ceil(float(retry_ms) / 1000),
            reset_s=math.ceil(float(reset_ms) / 1000),
        )
