"""Commands accepted but not yet in the read model: who they were for, so a write right after is not misjudged.

An order's customer, a claimed SKU's partner, the user of an address or a push device just
saved are remembered in Redis when the command is on Kafka (for ``SHOP_PENDING_OWNER_TTL_S``).
A decision that guards a write and finds the entity missing from the read model asks here:
when a command for it is still on its way, the answer is 409 with ``Retry-After`` (the read
model has not caught up), never a 403 or 404 taken on a read that is behind.
"""

from __future__ import annotations

import logging
from typing import Literal

import redis

from ingress.exceptions import StoreUnavailable
from ingress.problems import Problem
from topology.stores import PENDING_OWNER

log = logging.getLogger(__name__)
Kind = Literal["order", "sku", "address", "device"]
NOT_CAUGHT_UP = {"Retry-After": "1"}


class PendingOwners:
    def __init__(self, store: redis.Redis, prefix: str, ttl_s: int) -> None:
        self.store, self.prefix, self.ttl_s = store, prefix, ttl_s

    def _key(self, kind: Kind, entity: str) -> str:
        return PENDING_OWNER.format(self.prefix, kind=kind, id=entity)

    def record(self, kind: Kind, entity: str, owner: str) -> None:
        """Remember ``owner`` for ``entity``; called once its command is on Kafka, so it never fails the answer."""
        try:
            self.store.set(self._key(kind, entity), owner, ex=self.ttl_s)
        except redis.RedisError as err:  # the command is sent: a write right after it may get 403/404 instead of 409
            log.warning("pending %s %s not recorded: %s", kind, entity, err)

    def forget(self, kind: Kind, entity: str) -> None:
        """``entity`` is on its way out (its removal is on Kafka): nothing is pending for it any more."""
        try:
            self.store.delete(self._key(kind, entity))
        except redis.RedisError as err:  # it expires with its time to live
            log.warning("pending %s %s not forgotten: %s", kind, entity, err)

    def owner(self, kind: Kind, entity: str) -> str | None:
        try:
            raw = self.store.get(self._key(kind, entity))
        except redis.RedisError as err:
            raise StoreUnavailable("accepted commands cannot be looked up", str(err)) from None
        return raw.decode() if isinstance(raw, bytes) else raw


def not_caught_up(kind: Kind, entity: str) -> Problem:
    """The answer to a write whose entity a command is still bringing into the read model."""
    return Problem(
        409,
        "not-caught-up",
        "the read model has not caught up with an accepted command",
        f"the {kind} {entity} was accepted moments ago; retry shortly",
        NOT_CAUGHT_UP,
    )
