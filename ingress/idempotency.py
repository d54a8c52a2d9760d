"""``Idempotency-Key`` for writes, kept in Redis per caller.

The first request with a key reserves it; when its command is on Kafka the answer is
stored under the key (24 h). The same key with the same body gets that first answer
again; with another body, 422. A request still in flight with the key gets 409. If the
command could not be sent, the reservation is dropped, so the client may retry.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import redis

from topology.stores import IDEMPOTENCY

TTL_S = 24 * 3600
PENDING = "pending"


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict[str, Any]


class KeyConflict(Exception):
    """The key was used with another request, or its first request is still in flight."""

    def __init__(self, reason: str, in_flight: bool) -> None:
        super().__init__(reason)
        self.in_flight = in_flight


class IdempotencyKeys:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def _key(self, caller: str, key: str) -> str:
        return IDEMPOTENCY.format(self.prefix, caller=caller, key=key)

    @staticmethod
    def fingerprint(method: str, path: str, body: bytes) -> str:
        return hashlib.sha256(b"\0".join((method.encode(), path.encode(), body))).hexdigest()

    def reserve(self, caller: str, key: str, fingerprint: str) -> Replay | None:
        """None when this request is the first with the key (it is reserved); else the first answer."""
        slot = self._key(caller, key)
        if self.client.set(slot, json.dumps({"fp": fingerprint, "state": PENDING}), nx=True, ex=TTL_S):
            return None
        raw = self.client.get(slot)
        if raw is None:  # expired between the two calls: take it
            return self.reserve(caller, key, fingerprint)
        seen = json.loads(raw)
        if seen["fp"] != fingerprint:
            raise KeyConflict("this Idempotency-Key was used with a different request", in_flight=False)
        if seen["state"] == PENDING:
            raise KeyConflict("a request with this Idempotency-Key is still in flight", in_flight=True)
        return Replay(seen["status"], seen["body"])

    def complete(self, caller: str, key: str, fingerprint: str, status: int, body: dict[str, Any]) -> None:
        record = {"fp": fingerprint, "state": "done", "status": status, "body": body}
        self.client.set(self._key(caller, key), json.dumps(record), ex=TTL_S)

    def release(self, caller: str, key: str) -> None:
        self.client.delete(self._key(caller, key))
