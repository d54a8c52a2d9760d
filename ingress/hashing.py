"""How much password hashing (argon2) one ingress process does: a token bucket, per process.

Registration, login and partner tokens each hash or verify a secret once; each takes a
token first. The bucket holds ``SHOP_PASSWORD_HASH_BURST`` tokens and refills at
``SHOP_PASSWORD_HASHES_PER_S``, so a flood costs the process at most that much argon2 work
a second whatever the rate limits let through; a request finding the bucket empty is
refused (429, ``Retry-After``) without hashing anything.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from ingress.problems import Problem


class HashBudget:
    def __init__(self, per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_s, self.burst, self.clock = per_s, burst, clock
        self._tokens = float(burst)
        self._at = clock()
        self._lock = threading.Lock()
        #: tokens handed out since the process started (each one hash or verification)
        self.spent = 0

    def take(self) -> None:
        """One hash's worth of the budget, or a 429 saying when there will be some again."""
        with self._lock:
            now = self.clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.per_s)
            self._at = now
            if self._tokens < 1:
                wait = math.ceil((1 - self._tokens) / self.per_s)
                raise Problem(
                    429,
                    "busy",
                    "too many password checks right now",
                    "try again later",
                    {"Retry-After": str(max(1, wait))},
                )
            self._tokens -= 1
            self.spent += 1
