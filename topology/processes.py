"""Every process of the system: what it consumes, produces, stores and calls.

The ingress's public HTTP operations are declared here too (``ROUTES``): the ingress's
routing table and its OpenAPI paths are built from these same declarations
(``ingress/routes.py``), so the graph drawn from them cannot drift from the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from topology.topics import (
    CATALOG_COMMANDS,
    CATALOG_EVENTS,
    INVENTORY_COMMANDS,
    INVENTORY_EVENTS,
    LOGS,
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

if TYPE_CHECKING:
    from topology.settings import Settings

Store = Literal["postgres", "postgres-replica", "redis", "search", "mongo"]
External = Literal["payment gateway", "smtp", "sms", "push", "object store"]
STORES: tuple[Store, ...] = ("postgres", "postgres-replica", "redis", "search", "mongo")


@dataclass(frozen=True)
class Route:
    """One public HTTP operation: what it writes to Kafka or reads from a store.

    ``operation`` names it in the OpenAPI document (its ``operationId``); ``calls`` is the
    outside service it calls while the request waits.
    """

    operation: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str
    summary: str
    writes: Topic | None = None
    reads: Store | None = None
    calls: External | None = None


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


PLACE_ORDER = Route("place_order", "POST", "/v1/orders", "place an order", writes=ORDER_COMMANDS)
CANCEL_ORDER = Route("cancel_order", "POST", "/v1/orders/{order_id}/cancel", "cancel an order", writes=ORDER_COMMANDS)
REQUEST_REFUND = Route(
    "request_refund", "POST", "/v1/orders/{order_id}/refunds", "request a refund", writes=ORDER_COMMANDS
)
SHIP_ORDER = Route(
    "ship_order",
    "POST",
    "/v1/orders/{order_id}/shipments",
    "mark an order shipped (admin, partner)",
    writes=ORDER_COMMANDS,
)
DELIVER_ORDER = Route(
    "deliver_order",
    "POST",
    "/v1/orders/{order_id}/delivery",
    "mark an order delivered (admin, partner)",
    writes=ORDER_COMMANDS,
)
GET_ORDER = Route("get_order", "GET", "/v1/orders/{order_id}", "order status and history", reads="postgres-replica")
REGISTER = Route("register", "POST", "/v1/users", "register", writes=USER_COMMANDS)
UPDATE_PROFILE = Route("update_profile", "PATCH", "/v1/users/me", "update profile", writes=USER_COMMANDS)
GET_PROFILE = Route("get_profile", "GET", "/v1/users/me", "profile", reads="postgres-replica")
LIST_NOTIFICATIONS = Route(
    "list_notifications", "GET", "/v1/users/me/notifications", "a user's notifications", reads="mongo"
)
UPDATE_PREFERENCES = Route(
    "update_preferences",
    "PATCH",
    "/v1/users/me/preferences",
    "channels, marketing consent, quiet hours, locale",
    writes=USER_COMMANDS,
)
LIST_ADDRESSES = Route(
    "list_addresses", "GET", "/v1/users/me/addresses", "the caller's saved addresses", reads="postgres-replica"
)
ADD_ADDRESS = Route("add_address", "POST", "/v1/users/me/addresses", "save an address", writes=USER_COMMANDS)
CHANGE_ADDRESS = Route(
    "change_address", "PUT", "/v1/users/me/addresses/{address_id}", "change a saved address", writes=USER_COMMANDS
)
REMOVE_ADDRESS = Route(
    "remove_address", "DELETE", "/v1/users/me/addresses/{address_id}", "remove a saved address", writes=USER_COMMANDS
)
REGISTER_DEVICE = Route(
    "register_device", "POST", "/v1/users/me/devices", "a device to push messages to", writes=USER_COMMANDS
)
UNREGISTER_DEVICE = Route(
    "unregister_device", "DELETE", "/v1/users/me/devices/{device_id}", "forget a push device", writes=USER_COMMANDS
)
LIST_MY_ORDERS = Route(
    "list_my_orders", "GET", "/v1/users/me/orders", "the caller's orders, newest first", reads="postgres-replica"
)
GET_ACCOUNT = Route(
    "get_account", "GET", "/v1/users/{user_id}", "an account as support sees it", reads="postgres-replica"
)
LIST_PAYMENT_METHODS = Route(
    "list_payment_methods",
    "GET",
    "/v1/users/me/payment-methods",
    "a user's saved payment methods",
    reads="postgres",
    calls="payment gateway",
)
ADD_PAYMENT_METHOD = Route(
    "add_payment_method",
    "POST",
    "/v1/users/me/payment-methods",
    "save a card (a one-time token from the provider's card form)",
    reads="postgres",
    calls="payment gateway",
)
UPDATE_PAYMENT_METHOD = Route(
    "update_payment_method",
    "PATCH",
    "/v1/users/me/payment-methods/{payment_method_id}",
    "make a saved payment method the default, or not",
    reads="postgres",
    calls="payment gateway",
)
REMOVE_PAYMENT_METHOD = Route(
    "remove_payment_method",
    "DELETE",
    "/v1/users/me/payment-methods/{payment_method_id}",
    "remove a saved payment method",
    reads="postgres",
    calls="payment gateway",
)
UPSERT_PRODUCT = Route(
    "upsert_product", "PUT", "/v1/products/{sku}", "add or update a product", writes=CATALOG_COMMANDS
)
SEARCH_PRODUCTS = Route(
    "search_products", "GET", "/v1/products", "product search with filters and facets", reads="search"
)
SUGGEST_PRODUCTS = Route(
    "suggest_products", "GET", "/v1/products/suggest", "completions of what a shopper is typing", reads="search"
)
GET_PRODUCT = Route("get_product", "GET", "/v1/products/{sku}", "one product with its stock", reads="search")
SEARCH_ORDERS = Route(
    "search_orders", "GET", "/v1/orders", "orders by customer, status, date and total (support)", reads="search"
)
ADJUST_STOCK = Route(
    "adjust_stock", "POST", "/v1/stock/{sku}/adjustments", "adjust stock (partner, admin)", writes=INVENTORY_COMMANDS
)
GET_STOCK = Route("get_stock", "GET", "/v1/stock/{sku}", "stock level", reads="redis")
LOG_IN = Route("log_in", "POST", "/v1/auth/login", "log in", reads="postgres")
REFRESH_SESSION = Route("refresh_session", "POST", "/v1/auth/refresh", "refresh the tokens", reads="redis")
LOG_OUT = Route("log_out", "POST", "/v1/auth/logout", "log out", reads="redis")
ISSUE_CLIENT_TOKEN = Route(
    "issue_client_token",
    "POST",
    "/oauth/token",
    "a partner's access token (client credentials)",
    reads="postgres",
)

#: Every public operation of the ingress (its service endpoints, health and metrics, are its own).
ROUTES: tuple[Route, ...] = (
    PLACE_ORDER,
    CANCEL_ORDER,
    REQUEST_REFUND,
    SHIP_ORDER,
    DELIVER_ORDER,
    GET_ORDER,
    REGISTER,
    UPDATE_PROFILE,
    GET_PROFILE,
    LIST_NOTIFICATIONS,
    UPDATE_PREFERENCES,
    LIST_ADDRESSES,
    ADD_ADDRESS,
    CHANGE_ADDRESS,
    REMOVE_ADDRESS,
    REGISTER_DEVICE,
    UNREGISTER_DEVICE,
    LIST_MY_ORDERS,
    GET_ACCOUNT,
    LIST_PAYMENT_METHODS,
    ADD_PAYMENT_METHOD,
    UPDATE_PAYMENT_METHOD,
    REMOVE_PAYMENT_METHOD,
    UPSERT_PRODUCT,
    SEARCH_PRODUCTS,
    SUGGEST_PRODUCTS,
    GET_PRODUCT,
    SEARCH_ORDERS,
    ADJUST_STOCK,
    GET_STOCK,
    LOG_IN,
    REFRESH_SESSION,
    LOG_OUT,
    ISSUE_CLIENT_TOKEN,
)

ALL_EVENTS = (ORDER_EVENTS, INVENTORY_EVENTS, PAYMENT_EVENTS, USER_EVENTS, CATALOG_EVENTS, NOTIFICATION_EVENTS)

PROCESSES: tuple[Process, ...] = (
    Process(
        "ingress",
        "http",
        produces=tuple(dict.fromkeys(r.writes for r in ROUTES if r.writes)),
        reads=tuple(dict.fromkeys((*(r.reads for r in ROUTES if r.reads), "redis"))),  # redis: limits, sessions
        calls=tuple(dict.fromkeys(r.calls for r in ROUTES if r.calls)),
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
        "inventory",
        "flow",
        consumes=(INVENTORY_COMMANDS, CATALOG_EVENTS),  # catalog events: each SKU's owner and price
        produces=(INVENTORY_EVENTS, STOCK_LEVELS, ORDER_INBOX),
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
    Process("search", "sink", consumes=(CATALOG_EVENTS, STOCK_LEVELS, ORDER_EVENTS), writes=("search",)),
    Process("mongo", "sink", consumes=ALL_EVENTS, writes=("mongo",)),
    # Every process (and the operator's CLI) ships its log records to shop.logs (``topology/logs.py``;
    # its principal may write there: ``topology/access.py``); this sink indexes them by day.
    Process("logs", "sink", consumes=(LOGS,), writes=("search",)),
)


#: Producers outside the system that write straight to Kafka.
EXTERNAL_PRODUCERS: dict[str, tuple[Topic, ...]] = {"partners": (PARTNER_COMMANDS,)}


def consumer_groups(prefix: str = "") -> dict[str, Process]:
    """Consumer group id (with prefix) to the process that owns it."""
    return {p.group_for(prefix) or "": p for p in PROCESSES if p.group}


@dataclass(frozen=True)
class Program:
    """One process of the operating system (a Procfile line, or the supervisor that runs them) and its metrics port.

    ``runs`` names the declared ``PROCESSES`` it runs (several flows run as one group,
    ``flows/group.py``); ``metrics_port`` is where it serves Prometheus metrics (``/metrics``)
    unless the settings move it (``metrics_targets``).
    """

    name: str
    kind: Literal["supervisor", "http", "flow", "sink"]
    runs: tuple[str, ...]
    metrics_port: int

    @property
    def command(self) -> str:
        """The Procfile line's command (the supervisor is the one running the Procfile: it has none)."""
        match self.kind:
            case "http":
                return 'gunicorn -c ingress/gunicorn.conf.py "ingress.wsgi:app_from_env()"'
            case "flow" | "sink":
                return f"shopstream {self.kind} {' '.join(self.runs)}"
        return ""


#: Every process of ``shopstream run``, each with its metrics port (declared here only). The flow groups
#: take 9310-9319, the sinks 9301-9309; the ingress's, 18001, is the default API port + 1.
PROGRAMS: tuple[Program, ...] = (
    Program("supervisor", "supervisor", (), 9300),
    Program("ingress", "http", ("ingress",), 18001),
    Program("saga", "flow", ("orders", "inventory", "payments"), 9310),
    Program("services", "flow", ("users", "catalog", "notifications"), 9311),
    Program("sink-postgres", "sink", ("postgres",), 9301),
    Program("sink-redis", "sink", ("redis",), 9302),
    Program("sink-search", "sink", ("search",), 9303),
    Program("sink-mongo", "sink", ("mongo",), 9304),
    Program("sink-logs", "sink", ("logs",), 9305),
)


def program(name: str) -> Program:
    """The declared program of this name (a Procfile name, or ``supervisor``); KeyError when none is."""
    for declared in PROGRAMS:
        if declared.name == name:
            return declared
    raise KeyError(f"no program {name!r} is declared in topology/processes.py")


def metrics_port(name: str, settings: Settings) -> int:
    """The port ``name`` serves its metrics on under ``settings`` (0: none).

    The declared port, unless ``SHOP_METRICS_PORTS`` (a JSON object, name to port) moves it; the
    ingress's and the supervisor's own settings (``SHOP_INGRESS_METRICS_PORT``,
    ``SHOP_SUPERVISOR_METRICS_PORT``) move theirs.
    """
    declared = program(name)
    if not settings.metrics_enabled:
        return 0
    if declared.kind == "http":
        return settings.ingress_metrics_port or declared.metrics_port
    if declared.kind == "supervisor":
        chosen = settings.supervisor_metrics_port
        return declared.metrics_port if chosen is None else chosen
    return settings.metrics_ports.get(name, declared.metrics_port)


def metrics_targets(settings: Settings) -> tuple[tuple[str, int], ...]:
    """(program name, metrics port) of every program under ``settings``; a program whose metrics are off is left out."""
    pairs = ((p.name, metrics_port(p.name, settings)) for p in PROGRAMS)
    return tuple((name, port) for name, port in pairs if port)
