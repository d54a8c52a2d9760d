"""Rate limits in Redis: GCRA (the generic cell rate algorithm), atomic in one round trip.

Each cell (a caller or a client address, for a route class) has a rate and a burst. One Lua
call per request checks every cell the request is counted in and, only when all of them
pass, updates their theoretical arrival times; the answer says whether the request passes,
how many more would pass now, and when to come back (``Retry-After``, ``RateLimit-*``
headers), taken from the tightest cell. The same call can also say whether another key
exists (a logged-out token's revocation) and what a third holds (the caller's account state),
so a request costs one Redis command.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import redis

from topology.stores import RATE_LIMIT

# KEYS[1]: a key whose existence is reported ('' for none); KEYS[2]: a key whose value is reported
# ('' for none; '' when it does not exist); KEYS[3..]: the cells; ARGV: per cell, emission interval (ms)
# and burst tolerance (ms). A refused request updates no cell. Uses the server's clock, so every
# gunicorn worker and host agrees.
GCRA = """
local flagged = 0
if KEYS[1] ~= '' then flagged = redis.call('EXISTS', KEYS[1]) end
local held = ''
if KEYS[2] ~= '' then held = redis.call('GET', KEYS[2]) or '' end
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local allowed = 1
local answer = {0, flagged, held}
local updates = {}
for i = 3, #KEYS do
  local interval = tonumber(ARGV[2 * i - 5])
  local tolerance = tonumber(ARGV[2 * i - 4])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - tolerance - interval
  if now < allow_at then
    allowed = 0
    table.insert(answer, 0)
    table.insert(answer, allow_at - now)
    table.insert(answer, tat - now)
  else
    updates[i] = new_tat
    table.insert(answer, math.floor((tolerance - (new_tat - now - interval)) / interval))
    table.insert(answer, 0)
    table.insert(answer, new_tat - now)
  end
end
if allowed == 1 then
  for i, new_tat in pairs(updates) do
    local interval = tonumber(ARGV[2 * i - 5])
    redis.call('SET', KEYS[i], new_tat, 'PX', math.ceil(new_tat - now + interval))
  end
end
answer[1] = allowed
return answer
"""


@dataclass(frozen=True)
class Limit:
    per_second: float
    burst: int

    @property
    def interval_ms(self) -> float:
        return 1000.0 / self.per_second


@dataclass(frozen=True)
class Cell:
    """One count a request is checked against: whose (``caller``), for what (``route_class``), at what limit."""

    caller: str
    route_class: str
    limit: Limit


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    retry_after_s: int
    reset_s: int
    #: the ``flag`` key passed to ``check`` exists (False when none was passed)
    flagged: bool = False
    #: what the ``watch`` key passed to ``check`` holds ('' when none was passed, or it does not exist)
    watched: str = ""
    #: the cell the numbers are of: the one that refused, else the one with the fewest left
    cell: Cell | None = None

    @property
    def headers(self) -> dict[str, str]:
        """The ``RateLimit-*`` headers, and ``Retry-After`` when refused."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.retry_after_s))
        return headers


class RateLimiter:
    """GCRA checks, each one EVALSHA (the script is loaded again when Redis forgot it)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.sha = hashlib.sha1(GCRA.encode(), usedforsecurity=False).hexdigest()  # what EVALSHA names it by

    def check(self, caller: str, route_class: str, limit: Limit, flag: str | None = None) -> Verdict:
        """Count one request of ``caller`` against ``limit``; ``flag``: a key whose existence the verdict reports."""
        return self.check_all([Cell(caller, route_class, limit)], flag)

    def check_all(self, cells: list[Cell], flag: str | None = None, watch: str | None = None) -> Verdict:
        """Count one request in every cell, or in none when one of them refuses it.

        ``flag``: a key whose existence the verdict reports; ``watch``: a key whose value it reports.
        """
        keys = [
            flag or "",
            watch or "",
            *(RATE_LIMIT.format(self.prefix, route_class=c.route_class, caller=c.caller) for c in cells),
        ]
        args = [x for c in cells for x in (c.limit.interval_ms, c.limit.interval_ms * (c.limit.burst - 1))]
        try:
            answer = self.client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            self.client.script_load(GCRA)  # a restarted or flushed Redis forgot it
            answer = self.client.evalsha(self.sha, len(keys), *keys, *args)
        allowed, flagged, watched, *counts = answer
        per_cell = [
            (cell, max(0, int(counts[3 * i])), float(counts[3 * i + 1]), float(counts[3 * i + 2]))
            for i, cell in enumerate(cells)
        ]
        if allowed:
            cell, remaining, retry_ms, reset_ms = min(per_cell, key=lambda c: (c[1], -c[3]))
        else:
            cell, remaining, retry_ms, reset_ms = max(per_cell, key=lambda c: c[2])
        return Verdict(
            allowed=bool(allowed),
            limit=cell.limit.burst,
            remaining=remaining,
            retry_after_s=math.ceil(retry_ms / 1000),
            reset_s=math.ceil(reset_ms / 1000),
            flagged=bool(flagged),
            watched=watched.decode() if isinstance(watched, bytes) else str(watched),
            cell=cell,
        )
