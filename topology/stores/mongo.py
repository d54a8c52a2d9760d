"""MongoDB collections: the audit log of every event, and users' notifications."""

from __future__ import annotations

from dataclasses import dataclass

from topology.stores.tables import NOTIFICATIONS, Table


@dataclass(frozen=True)
class Collection:
    name: str
    #: the document kind, for a collection whose documents are read-model rows
    table: Table | None = None


#: The audit log in buckets: documents of a checkpoint's events, each event once (``sinks/mongo.py``).
#: A name of its own: the one-document-per-event ``audit`` collection of earlier versions is left as it is.
AUDIT = Collection("audit_log")
#: One document per notification, newest version wins.
NOTIFICATION_DOCS = Collection("notifications", NOTIFICATIONS)
