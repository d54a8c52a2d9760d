"""PostgreSQL tables (and the document kinds shaped like them): name, key, columns, how rows merge.

The read models' rows carry the ``seq`` of the newest event applied (``version``); append-only
tables keep the first row per key. A table filled by some of its topic's events only
(``filled_by``) holds, per key, the version of the newest of those. Every event that fills a
table gives each of its columns but the facts, so rows of one key merge the same in any order.
The credentials tables and the users' payment customers belong to the ingress alone and carry
no version. ``MIGRATIONS`` holds the SQL that creates them all (yoyo-migrations).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from operator import itemgetter
from pathlib import Path
from typing import Any

from topology.messages import (
    AccountClosed,
    AccountReinstated,
    AccountSuspended,
    AddressAdded,
    AddressChanged,
    AddressRemoved,
    DeviceRegistered,
    DeviceUnregistered,
    Message,
    PreferencesUpdated,
    ProfileUpdated,
    RoleGranted,
    RoleRevoked,
    UserRegistered,
)
from topology.topics import (
    CATALOG_EVENTS,
    NOTIFICATION_EVENTS,
    ORDER_EVENTS,
    PAYMENT_EVENTS,
    STOCK_LEVELS,
    USER_EVENTS,
    Topic,
)

Row = dict[str, Any]
Key = tuple[Any, ...]
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@dataclass(frozen=True)
class Table:
    """One table (or document kind): its key, its other columns, how its rows merge."""

    name: str
    key: tuple[str, ...]
    columns: tuple[str, ...]
    append_only: bool = False
    #: rows carry the version of the newest event applied (False: a table one writer owns)
    versioned: bool = True
    #: the event topic whose events fill it (None: written by the ingress, not from events)
    follows: Topic | None = None
    #: the types of the topic's events that fill it (empty: every event of the topic does)
    filled_by: tuple[type[Message], ...] = ()

    @cached_property
    def all_columns(self) -> tuple[str, ...]:
        with_version = self.versioned and not self.append_only
        return (*self.key, *self.columns, "version") if with_version else (*self.key, *self.columns)

    def named(self, *names: str) -> tuple[str, ...]:
        """``names``, each checked to be a column of this table (a typo fails where it is written)."""
        unknown = [n for n in names if n not in self.all_columns]
        if unknown:
            raise KeyError(f"{self.name} has no column {', '.join(unknown)}")
        return names

    @cached_property
    def key_of(self) -> Callable[[Row], Key]:
        """A row's key, always a tuple (``itemgetter`` of one name would give the bare value)."""
        return _getter(self.key)

    @cached_property
    def values_of(self) -> Callable[[Row], tuple[Any, ...]]:
        """A row's values in ``all_columns`` order."""
        return _getter(self.all_columns)


def _getter(names: tuple[str, ...]) -> Callable[[Row], tuple[Any, ...]]:
    if len(names) == 1:
        (name,) = names
        return lambda row: (row[name],)
    return itemgetter(*names)


ORDERS = Table(
    "orders",
    ("order_id",),
    (
        "customer_id",
        "status",
        "total_amount",
        "currency",
        "placed_at",
        "carrier",
        "tracking_code",
        "cancel_reason",
        "updated_at",
    ),
    follows=ORDER_EVENTS,
)
ORDER_LINES = Table(
    "order_lines",
    ("order_id", "line_no"),
    ("sku", "quantity", "unit_amount", "currency"),
    append_only=True,
    follows=ORDER_EVENTS,
)
ORDER_HISTORY = Table(
    "order_history",
    ("order_id", "version"),
    ("status", "occurred_at", "event_id"),
    append_only=True,
    follows=ORDER_EVENTS,
)
PAYMENTS = Table(
    "payments",
    ("order_id",),
    ("payment_id", "status", "authorized_amount", "captured_amount", "currency", "decline_reason", "updated_at"),
    follows=PAYMENT_EVENTS,
)
PAYMENT_REFUNDS = Table(
    "payment_refunds",
    ("order_id", "version"),
    ("payment_id", "amount", "currency", "occurred_at"),
    append_only=True,
    follows=PAYMENT_EVENTS,
)
STOCK = Table("stock", ("sku",), ("total", "reserved", "available", "updated_at"), follows=STOCK_LEVELS)
#: A user's profile (the roles live in the credentials: a role change only moves the version on).
USERS = Table(
    "users",
    ("user_id",),
    ("email", "name", "phone", "registered_at", "updated_at"),
    follows=USER_EVENTS,
    filled_by=(UserRegistered, ProfileUpdated, RoleGranted, RoleRevoked),
)
#: A user's preferences as one JSON document (``topology.messages.users.Preferences``).
USER_PREFERENCES = Table(
    "user_preferences",
    ("user_id",),
    ("preferences", "updated_at"),
    follows=USER_EVENTS,
    filled_by=(PreferencesUpdated,),
)
#: A user's saved addresses, a JSON array of ``SavedAddress`` in the order they were saved.
USER_ADDRESSES = Table(
    "user_addresses",
    ("user_id",),
    ("addresses", "updated_at"),
    follows=USER_EVENTS,
    filled_by=(AddressAdded, AddressChanged, AddressRemoved),
)
#: A user's push devices, a JSON array (id, platform, when registered; their tokens stay on the topic), oldest first.
USER_DEVICES = Table(
    "user_devices",
    ("user_id",),
    ("devices", "updated_at"),
    follows=USER_EVENTS,
    filled_by=(DeviceRegistered, DeviceUnregistered),
)
#: A user's account status as the read models show it (the credentials hold the one login and refresh obey).
USER_STATUS = Table(
    "user_status",
    ("user_id",),
    ("status", "reason", "updated_at"),
    follows=USER_EVENTS,
    filled_by=(UserRegistered, AccountSuspended, AccountReinstated, AccountClosed),
)
PRODUCTS = Table(
    "products",
    ("sku",),
    (
        "title",
        "description",
        "brand",
        "category",
        "tags",
        "price_amount",
        "currency",
        "owner_partner_id",
        "updated_at",
    ),
    follows=CATALOG_EVENTS,
)
#: Orders as support searches them: the order row plus the SKUs it holds.
ORDER_DOCS = Table("orders", ORDERS.key, (*ORDERS.columns, "skus"), follows=ORDER_EVENTS)
NOTIFICATIONS = Table(
    "notifications",
    ("notification_id",),
    ("user_id", "channel", "status", "reason", "occurred_at"),
    follows=NOTIFICATION_EVENTS,
)

#: The read models in the order a batch writes them.
POSTGRES_TABLES = (
    ORDERS,
    ORDER_LINES,
    ORDER_HISTORY,
    PAYMENTS,
    PAYMENT_REFUNDS,
    STOCK,
    USERS,
    USER_PREFERENCES,
    USER_ADDRESSES,
    USER_DEVICES,
    USER_STATUS,
    PRODUCTS,
)

#: Users' password hashes, roles and account status (the ingress's own table; ``shopstream user`` changes
#: roles and status).
CREDENTIALS = Table(
    "credentials",
    ("user_id",),
    ("email", "password_hash", "roles", "created_at", "status", "status_changed_at"),
    versioned=False,
)
#: Partners' OAuth2 clients (the ingress's own table).
PARTNER_CLIENTS = Table(
    "partner_clients", ("client_id",), ("partner_id", "secret_hash", "scopes", "created_at"), versioned=False
)
#: Each user's customer at the payment provider, whose vault keeps the user's saved cards (the ingress's own table).
PAYMENT_CUSTOMERS = Table("payment_customers", ("user_id",), ("customer_id", "created_at"), versioned=False)
