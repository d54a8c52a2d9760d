"""MongoDB collections: the audit log of every event, and users' notifications."""

from __future__ import annotations

from dataclasses import dataclass

from topology.stores.tables import NOTIFICATIONS, Table


@dataclass(frozen=True)
class Collection:
    name: str
    #: the document kind, for a collection whose documents are read-model rows
    table: Table | None = None


#: One document per event, keyed by the event id.
AUDIT = Collection("audit")
#: One document per notification, newest version wins.
NOTIFICATION_DOCS = Collection("notifications", NOTIFICATIONS)
