"""The Redis sink: stock levels, an order status cache and a product cache, newest version wins.

Keys (``topology.stores.CACHES``): stock levels (no TTL; the ingress falls back to
PostgreSQL when one is missing), order statuses and products (TTLs from settings; a newer
event overwrites, which is the invalidation). Each key is a hash with a
``version`` field; one Lua script per key compares and sets atomically, in one pipeline
per batch.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import redis as redis_lib

from sinks.base import EventSink, Record, Rejected, project_each
from sinks.exceptions import StoreUnavailable
from sinks.projections import fold, read_model_rows
from topology.stores import CACHES, PRODUCT_CACHE, PRODUCTS, CacheKind, Row, cache_ttl_s

TRANSIENT = (redis_lib.ConnectionError, redis_lib.TimeoutError, redis_lib.BusyLoadingError)

# KEYS[1] the hash; ARGV: version, ttl (0: none), n latest pairs, latest field/value pairs, fact field/value pairs.
# Latest fields change only for a newer version; facts are set once (HSETNX), whatever the order.
COMPARE_AND_SET = """
local current = redis.call('HGET', KEYS[1], 'version')
local newer = (not current) or tonumber(current) < tonumber(ARGV[1])
local n = tonumber(ARGV[3])
if newer then
  redis.call('HSET', KEYS[1], 'version', ARGV[1])
  for i = 4, 3 + 2 * n, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
for i = 4 + 2 * n, #ARGV, 2 do redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) end
if tonumber(ARGV[2]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if newer then return 1 else return 0 end
"""


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


class RedisSink(EventSink):
    name = "redis"

    def connect(self) -> None:
        self._client = redis_lib.Redis.from_url(self.settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
        self._script = self._client.register_script(COMPARE_AND_SET)
        self._ttl = {kind: cache_ttl_s(kind, self.settings) for kind in CACHES.values()}

    def close(self) -> None:
        self._client.close()

    def key(self, kind: CacheKind, row: Row) -> str:
        return kind.key_for(self.settings.redis_prefix, row)

    def store(self, records: list[Record]) -> tuple[int, list[Rejected]]:
        projected, rejected = project_each(records, read_model_rows)
        by_kind: dict[CacheKind, list[tuple[Record, Row]]] = {}
        for record, rows in projected:
            for table, row in rows:
                kind = CACHES.get(table.name)
                if kind is not None:
                    by_kind.setdefault(kind, []).append((record, row))
        calls: list[tuple[list[Record], str]] = []
        pipe = self._client.pipeline(transaction=False)
        for kind, pairs in by_kind.items():
            sources: dict[str, list[Record]] = {}
            for record, row in pairs:
                sources.setdefault(self.key(kind, row), []).append(record)
            for row in fold(kind.table, (row for _, row in pairs)).values():
                key = self.key(kind, row)
                if kind is PRODUCT_CACHE:
                    row = {
                        "doc": json.dumps({c: row[c] for c in PRODUCTS.all_columns}, default=_text, sort_keys=True)
                    } | {"version": row["version"]}
                latest = [(f, _text(row[f])) for f in kind.latest if row.get(f) is not None]
                facts = [(f, _text(row[f])) for f in kind.facts if row.get(f) is not None]
                argv = [
                    row["version"],
                    self._ttl[kind],
                    len(latest),
                    *(x for pair in latest + facts for x in pair),
                ]
                self._script(keys=[key], args=argv, client=pipe)
                calls.append((sources[key], key))
        try:
            results = pipe.execute(raise_on_error=False)
        except TRANSIENT as err:
            raise StoreUnavailable(f"redis: {err}") from err
        kept = {id(record) for pairs in by_kind.values() for record, _ in pairs}
        for (written, key), result in zip(calls, results, strict=True):
            if isinstance(result, TRANSIENT):
                raise StoreUnavailable(f"redis: {result}")
            if isinstance(result, Exception):
                for record in written:
                    kept.discard(id(record))
                    rejected.append(Rejected(record.item, f"redis refused {key}: {result}"))
        return len(kept), rejected
