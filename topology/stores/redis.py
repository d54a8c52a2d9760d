"""Redis keys: the read caches the Redis sink fills and the ingress's own keys (limits, sessions).

Every key sits under the settings' ``redis_prefix``. A cache key is a hash with a ``version``
field; ``latest`` fields follow the newest event, ``facts`` are set once.
"""

from __future__ import annotations

from dataclasses import dataclass

from topology.settings import Settings
from topology.stores.tables import ORDERS, PRODUCTS, STOCK, Row, Table


@dataclass(frozen=True)
class RedisKey:
    """A key template such as ``stock:{sku}``."""

    template: str

    def format(self, prefix: str, **parts: object) -> str:
        return prefix + self.template.format(**parts)


@dataclass(frozen=True)
class CacheKind:
    """One kind of cached entity: its table, its key, the fields that follow the newest event, the set-once ones."""

    table: Table
    key: RedisKey
    latest: tuple[str, ...]
    facts: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.key.template.split(":", 1)[0]

    def key_for(self, prefix: str, row: Row) -> str:
        """The key of the entity a row of ``table`` belongs to."""
        return self.key.format(prefix, **{k: row[k] for k in self.table.key})


STOCK_CACHE = CacheKind(STOCK, RedisKey("stock:{sku}"), ("total", "reserved", "available", "updated_at"))
ORDER_CACHE = CacheKind(ORDERS, RedisKey("order:{order_id}"), ("status", "updated_at"), ("customer_id",))
#: A product cached as one JSON document (``doc``) of the products row.
PRODUCT_CACHE = CacheKind(PRODUCTS, RedisKey("product:{sku}"), ("doc",))
#: Read-model table name -> the cache kind it fills.
CACHES = {kind.table.name: kind for kind in (STOCK_CACHE, ORDER_CACHE, PRODUCT_CACHE)}


def cache_ttl_s(kind: CacheKind, settings: Settings) -> int:
    """How long a cache key lives after its last write, in seconds (0: for good)."""
    return {ORDER_CACHE: settings.order_cache_ttl_s, PRODUCT_CACHE: settings.product_cache_ttl_s}.get(kind, 0)


#: GCRA state of one caller for one route class.
RATE_LIMIT = RedisKey("rl:{route_class}:{caller}")
#: A caller's Idempotency-Key: its reservation, then the first answer.
IDEMPOTENCY = RedisKey("idem:{caller}:{key}")
#: A refresh token (by digest) and the session family it belongs to.
REFRESH_TOKEN = RedisKey("rt:{digest}")
SESSION_FAMILY = RedisKey("rtf:{family}")
#: Set when a refresh token is presented: a second presentation is a reuse.
REFRESH_TOKEN_USED = RedisKey("rt:{digest}:used")
#: An access token revoked by logout, until it would have expired.
REVOKED_TOKEN = RedisKey("revoked:{token_id}")
#: An account whose tokens do not hold (``shopstream user suspend|reinstate|close``): ``STATUS SINCE``, the
#: status and the epoch second it took effect. Not active: no token of the account is taken; active again
#: (reinstated): only tokens issued since are, for as long as an access token lives.
ACCOUNT_STATE = RedisKey("account:{user_id}")


def account_state(status: str, since: int) -> str:
    """The value of an ``ACCOUNT_STATE`` key: the account's status and the epoch second it took effect."""
    return f"{status} {since}"


def read_account_state(value: str) -> tuple[str, int]:
    """(status, since) of an ``ACCOUNT_STATE`` value; a value of another shape is an account not active."""
    status, _, since = value.partition(" ")
    return (status, int(since)) if since.isdigit() else ("suspended", 0)


#: Who a command the ingress accepted was for (an order's customer, a SKU's claiming partner),
#: while the read model may not have it yet.
PENDING_OWNER = RedisKey("pending:{kind}:{id}")
