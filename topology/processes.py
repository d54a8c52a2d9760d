"""Every process of the system: what it consumes, produces, stores and calls.

The ingress's HTTP routes are declared here too (the gateway builds its routing table
from ``ROUTES``), so the graph drawn from these declarations cannot drift from the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from topology.topics import (
    CATALOG_COMMANDS,
    CATALOG_EVENTS,
    INVENTORY_COMMANDS,
    INVENTORY_EVENTS,
    NOTIFICATION_COMMANDS,
    NOTIFICATION_EVENTS,
    ORDER_COMMANDS,
    ORDER_EVENTS,
    ORDER_INBOX,
    PARTNER_COMMANDS,
    PAYMENT_COMMANDS,
    PAYMENT_EVENTS,
    STOCK_LEVELS,
    USER_COMMANDS,
    USER_EVENTS,
    Topic,
)

Store = Literal["postgres", "postgres-replica", "redis", "search", "mongo"]
External = Literal["payment gateway", "smtp", "sms", "push", "object store"]
STORES: tuple[Store, ...] = ("postgres", "postgres-replica", "redis", "search", "mongo")


@dataclass(frozen=True)
class Route:
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str
    summary: str
    writes: Topic | None = None
    reads: Store | None = None


@dataclass(frozen=True)
class Process:
    """One long-running process (a Procfile line) and, for consumers, its consumer group."""

    name: str
    kind: Literal["http", "flow", "sink"]
    consumes: tuple[Topic, ...] = ()
    produces: tuple[Topic, ...] = ()
    writes: tuple[Store, ...] = ()
    reads: tuple[Store, ...] = ()
    calls: tuple[External, ...] = ()

    @property
    def group(self) -> str | None:
        """The consumer group id (before the topic prefix), or None for a process that only produces."""
        return f"shopstream.{self.kind}.{self.name}" if self.consumes else None

    def group_for(self, prefix: str = "") -> str | None:
        return f"{prefix}{self.group}" if self.group else None


ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/orders", "place an order", writes=ORDER_COMMANDS),
    Route("POST", "/v1/orders/{order_id}/cancel", "cancel an order", writes=ORDER_COMMANDS),
    Route("POST", "/v1/orders/{order_id}/refunds", "request a refund", writes=ORDER_COMMANDS),
    Route("GET", "/v1/orders/{order_id}", "order status and history", reads="postgres-replica"),
    Route("POST", "/v1/users", "register", writes=USER_COMMANDS),
    Route("PATCH", "/v1/users/me", "update profile", writes=USER_COMMANDS),
    Route("GET", "/v1/users/me", "profile", reads="postgres-replica"),
    Route("GET", "/v1/users/me/notifications", "a user's notifications", reads="mongo"),
    Route("PUT", "/v1/products/{sku}", "add or update a product", writes=CATALOG_COMMANDS),
    Route("GET", "/v1/products", "product search with filters and facets", reads="search"),
    Route("POST", "/v1/stock/{sku}/adjustments", "adjust stock (partner, admin)", writes=INVENTORY_COMMANDS),
    Route("GET", "/v1/stock/{sku}", "stock level", reads="redis"),
)

ALL_EVENTS = (ORDER_EVENTS, INVENTORY_EVENTS, PAYMENT_EVENTS, USER_EVENTS, CATALOG_EVENTS, NOTIFICATION_EVENTS)

PROCESSES: tuple[Process, ...] = (
    Process(
        "ingress",
        "http",
        produces=tuple(dict.fromkeys(r.writes for r in ROUTES if r.writes)),
        reads=(*tuple(dict.fromkeys(r.reads for r in ROUTES if r.reads)), "redis"),
    ),
    Process(
        "orders",
        "flow",
        consumes=(ORDER_COMMANDS, PARTNER_COMMANDS, ORDER_INBOX),
        produces=(
            ORDER_INBOX,
            ORDER_EVENTS,
            INVENTORY_COMMANDS,
            PAYMENT_COMMANDS,
            NOTIFICATION_COMMANDS,
            CATALOG_COMMANDS,
        ),
    ),
    Process(
        "inventory", "flow", consumes=(INVENTORY_COMMANDS,), produces=(INVENTORY_EVENTS, STOCK_LEVELS, ORDER_INBOX)
    ),
    Process(
        "payments",
        "flow",
        consumes=(PAYMENT_COMMANDS,),
        produces=(PAYMENT_EVENTS, ORDER_INBOX),
        calls=("payment gateway",),
    ),
    Process("users", "flow", consumes=(USER_COMMANDS,), produces=(USER_EVENTS,)),
    Process("catalog", "flow", consumes=(CATALOG_COMMANDS,), produces=(CATALOG_EVENTS,)),
    Process(
        "notifications",
        "flow",
        consumes=(NOTIFICATION_COMMANDS, USER_EVENTS),
        produces=(NOTIFICATION_EVENTS,),
        calls=("smtp", "sms", "push"),
    ),
    Process(
        "postgres",
        "sink",
        consumes=(ORDER_EVENTS, PAYMENT_EVENTS, STOCK_LEVELS, USER_EVENTS, CATALOG_EVENTS),
        writes=("postgres",),
    ),
    Process("redis", "sink", consumes=(STOCK_LEVELS, ORDER_EVENTS, CATALOG_EVENTS), writes=("redis",)),
    Process("search", "sink", consumes=(CATALOG_EVENTS, ORDER_EVENTS), writes=("search",)),
    Process("mongo", "sink", consumes=ALL_EVENTS, writes=("mongo",)),
)


#: Producers outside the system that write straight to Kafka.
EXTERNAL_PRODUCERS: dict[str, tuple[Topic, ...]] = {"partners": (PARTNER_COMMANDS,)}


def consumer_groups(prefix: str = "") -> dict[str, Process]:
    """Consumer group id (with prefix) to the process that owns it."""
    return {p.group_for(prefix) or "": p for p in PROCESSES if p.group}
