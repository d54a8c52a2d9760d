"""The MongoDB sink: an audit log of every event, and users' notifications.

The audit collection: one document per event (who, what, when, trace id), keyed by the event id so
a replay inserts nothing new; a TTL index drops entries after ``SHOP_AUDIT_RETENTION_DAYS``.
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


def trace_id(traceparent: str | None) -> str | None:
    return traceparent.split("-")[1] if traceparent else None


def audit_entry(e: Envelope, key: bytes | str | None, retention: timedelta) -> dict[str, Any]:
    """The audit document of one event, with the record key it travelled under."""
    return {
        "_id": e.id,
        "type": e.type,
        "seq": e.seq,
        "who": {"kind": e.producer.kind, "id": e.producer.id},
        "what": msgspec.to_builtins(e.payload),
        "occurred_at": e.occurred_at,
        "correlation_id": e.correlation_id,
        "causation_id": e.causation_id,
        "trace_id": trace_id(e.traceparent),
        "key": key.decode(errors="replace") if isinstance(key, bytes) else key,
        "expires_at": e.occurred_at + retention,
    }


def ensure_indexes(db: pymongo.database.Database[dict[str, Any]]) -> None:
    audit, notifications = db[AUDIT.name], db[NOTIFICATION_DOCS.name]
    audit.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0, name="ttl")
    audit.create_index([("correlation_id", ASCENDING)], name="by_correlation")
    audit.create_index([("key", ASCENDING), ("occurred_at", DESCENDING)], name="by_entity")
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
            audit_failed = self._bulk(
                self._db[AUDIT.name], [InsertOne(audit_entry(r.envelope, r.item.key, retention)) for r in records]
            )
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

    @staticmethod
    def _bulk(collection: pymongo.collection.Collection[dict[str, Any]], operations: list[Any]) -> dict[int, str]:
        """Run unordered; the index and reason of each operation that failed for a reason other than 'already there'."""
        if not operations:
            return {}
        try:
            collection.bulk_write(operations, ordered=False)
        except BulkWriteError as err:
            if err.details.get("writeConcernErrors"):
                raise StoreUnavailable(f"mongo write concern: {err.details['writeConcernErrors'][:1]}") from err
            return {
                e["index"]: e.get("errmsg", str(e)) for e in err.details["writeErrors"] if e["code"] != DUPLICATE_KEY
            }
        return {}
