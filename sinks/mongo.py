"""The MongoDB sink: an audit log of every event, and users' notifications.

The audit collection follows MongoDB's bucket pattern: each write holds a checkpoint's events in
documents of up to ``SHOP_AUDIT_BUCKET_EVENTS`` entries (who, what, when, trace id, correlation),
since the server's cost is per document more than per entry. A unique index on the entries' ids
keeps each event once in the whole collection: a bucket that repeats an event already kept (a
replay) is refused whole, and only its new entries are written again, as a bucket of their own.
A TTL index drops a bucket ``SHOP_AUDIT_RETENTION_DAYS`` after its newest event.
The notifications collection: one document per notification, newest version wins (a conditional
upsert whose duplicate-key answer means "already as new"), indexed for the ingress's
"a user's notifications" query. Writes use ``j: true``: SecantusDB, like MongoDB, only
promises durability across a crash for journaled writes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec
import pymongo
from pymongo import ASCENDING, DESCENDING, InsertOne, UpdateOne
from pymongo.errors import AutoReconnect, BulkWriteError, ConnectionFailure, NetworkTimeout, ServerSelectionTimeoutError
from pymongo.write_concern import WriteConcern

from sinks.base import EventSink, Record, Rejected, project_each
from sinks.exceptions import StoreUnavailable
from sinks.projections import fold, notification_row
from topology.envelope import Envelope
from topology.stores import AUDIT, NOTIFICATION_DOCS, NOTIFICATIONS

TRANSIENT = (AutoReconnect, ConnectionFailure, NetworkTimeout, ServerSelectionTimeoutError)
DUPLICATE_KEY = 11000
DUPLICATE = "duplicate key: "
#: Each round writes again only what refused buckets held that is not kept yet (alone, after a refusal
#: of its own), so a write ends in three rounds at most.
MAX_AUDIT_ROUNDS = 5


def trace_id(traceparent: str | None) -> str | None:
    return traceparent.split("-")[1] if traceparent else None


def audit_entry(e: Envelope, key: bytes | str | None) -> dict[str, Any]:
    """The audit entry of one event, with the record key it travelled under."""
    return {
        "id": e.id,
        "type": e.type,
        "seq": e.seq,
        "who": {"kind": e.producer.kind, "id": e.producer.id},
        "what": msgspec.to_builtins(e.payload),
        "occurred_at": e.occurred_at,
        "correlation_id": e.correlation_id,
        "causation_id": e.causation_id,
        "trace_id": trace_id(e.traceparent),
        "key": key.decode(errors="replace") if isinstance(key, bytes) else key,
    }


def audit_buckets(entries: list[dict[str, Any]], size: int, retention: timedelta) -> list[dict[str, Any]]:
    """The bucket documents holding ``entries``, ``size`` at most in each, named after their first entry."""
    return [
        {
            "_id": chunk[0]["id"],
            "expires_at": max(entry["occurred_at"] for entry in chunk) + retention,
            "events": chunk,
        }
        for chunk in (entries[i : i + size] for i in range(0, len(entries), size))
    ]


def ensure_indexes(db: pymongo.database.Database[dict[str, Any]]) -> None:
    audit, notifications = db[AUDIT.name], db[NOTIFICATION_DOCS.name]
    audit.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0, name="ttl")
    audit.create_index([("events.id", ASCENDING)], unique=True, name="each_event_once")
    audit.create_index([("events.correlation_id", ASCENDING)], name="by_correlation")
    notifications.create_index([("user_id", ASCENDING), ("occurred_at", DESCENDING)], name="by_user")


class MongoSink(EventSink):
    name = "mongo"

    def connect(self) -> None:
        self._client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
            self.settings.mongo_url, serverSelectionTimeoutMS=5000, socketTimeoutMS=30000, tz_aware=True
        )
        self._db = self._client.get_database(self.settings.mongo_database, write_concern=WriteConcern(w=1, j=True))
        self._ready = False

    def close(self) -> None:
        self._client.close()

    def store(self, records: list[Record]) -> tuple[int, list[Rejected]]:
        retention = timedelta(days=self.settings.audit_retention_days)
        projected, rejected = project_each(records, notification_row)
        notes = [(r, row) for r, row in projected if row is not None]
        try:
            if not self._ready:
                ensure_indexes(self._db)
                self._ready = True
            audit_failed = self._audit(records, retention)
            by_id: dict[str, list[Record]] = {}
            for record, row in notes:
                by_id.setdefault(row["notification_id"], []).append(record)
            folded = list(fold(NOTIFICATIONS, (row for _, row in notes)).values())
            upserts = [
                UpdateOne(
                    {"_id": row["notification_id"], "version": {"$lt": row["version"]}},
                    {"$set": {k: v for k, v in row.items() if k != "notification_id"}},
                    upsert=True,
                )
                for row in folded
            ]
            notes_failed = self._bulk(self._db[NOTIFICATION_DOCS.name], upserts)
        except TRANSIENT as err:
            raise StoreUnavailable(f"mongo: {err}") from err
        failed: dict[int, str] = {id(records[i]): reason for i, reason in audit_failed.items()}
        for i, reason in notes_failed.items():
            for record in by_id[folded[i]["notification_id"]]:
                failed.setdefault(id(record), reason)
        rejected += [Rejected(r.item, f"mongo refused it: {failed[id(r)]}") for r in records if id(r) in failed]
        return len(records) - len(failed), rejected

    def _audit(self, records: list[Record], retention: timedelta) -> dict[int, str]:
        """Write every record's audit entry once; the index in ``records`` and reason of each refused."""
        collection = self._db[AUDIT.name]
        position = {record.envelope.id: i for i, record in enumerate(records)}
        pending = list({r.envelope.id: audit_entry(r.envelope, r.item.key) for r in records}.values())
        failed: dict[int, str] = {}
        alone: list[dict[str, Any]] = []  # entries of a bucket refused for a reason of its own: one per bucket
        for _ in range(MAX_AUDIT_ROUNDS):
            if not pending and not alone:
                return failed
            buckets = audit_buckets(pending, self.settings.audit_bucket_events, retention)
            buckets += audit_buckets(alone, 1, retention)
            refused = self._bulk(collection, [InsertOne(b) for b in buckets], keep_duplicates=True)
            pending, alone = [], []
            for index, reason in refused.items():
                entries = buckets[index]["events"]
                if not reason.startswith(DUPLICATE):
                    if len(entries) == 1:
                        failed[position[entries[0]["id"]]] = reason
                    else:
                        alone += entries
                    continue
                kept = {
                    e["id"]
                    for doc in collection.find({"events.id": {"$in": [e["id"] for e in entries]}}, {"events.id": 1})
                    for e in doc["events"]
                }
                # Whatever is not kept yet goes again; a bucket refused with nothing new in it is done.
                pending += [e for e in entries if e["id"] not in kept]
        raise StoreUnavailable(f"mongo: {len(pending)} audit entries still refused as duplicates, yet not kept")

    @staticmethod
    def _bulk(
        collection: pymongo.collection.Collection[dict[str, Any]], operations: list[Any], keep_duplicates: bool = False
    ) -> dict[int, str]:
        """Run unordered; the index and reason of each operation that failed (for 'already there' too if asked)."""
        if not operations:
            return {}
        try:
            collection.bulk_write(operations, ordered=False)
        except BulkWriteError as err:
            if err.details.get("writeConcernErrors"):
                raise StoreUnavailable(f"mongo write concern: {err.details['writeConcernErrors'][:1]}") from err
            errors = err.details["writeErrors"]
            return {
                e["index"]: (DUPLICATE if e["code"] == DUPLICATE_KEY else "") + e.get("errmsg", str(e))
                for e in errors
                if keep_duplicates or e["code"] != DUPLICATE_KEY
            }
        return {}
