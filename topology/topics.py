"""Every topic of the system: name, partitions, retention, cleanup, key, messages, DLQ.

Names here are logical; ``Topic.name_for(prefix)`` gives the broker name, so tests and
environments can live side by side under ``SHOP_TOPIC_PREFIX``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from topology.envelope import Envelope
from topology.messages import (
    AccountClosed,
    AccountReinstated,
    AccountSuspended,
    AddAddress,
    AddressAdded,
    AddressChanged,
    AddressRemoved,
    AdjustStock,
    AuthorizePayment,
    AuthorizePaymentV2,
    CancelOrder,
    CapturePayment,
    ChangeAddress,
    CloseAccount,
    CommitStock,
    DeviceRegistered,
    DeviceUnregistered,
    ExpireOrderStep,
    GrantRole,
    MarkOrderDelivered,
    MarkOrderShipped,
    Message,
    NotificationFailed,
    NotificationSent,
    OrderCancelled,
    OrderConfirmed,
    OrderDelivered,
    OrderPlaced,
    OrderShipped,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRefunded,
    PaymentVoided,
    PlaceOrder,
    PlaceOrderV2,
    PlaceOrderV3,
    PreferencesUpdated,
    ProductUpserted,
    ProfileUpdated,
    RefundPayment,
    RegisterDevice,
    RegisterUser,
    ReinstateAccount,
    ReleaseStock,
    RemoveAddress,
    RequestRefund,
    ReserveStock,
    RevokeRole,
    RoleGranted,
    RoleRevoked,
    SendNotification,
    StockAdjusted,
    StockCommitted,
    StockLevelChanged,
    StockRejected,
    StockReleased,
    StockReserved,
    SuspendAccount,
    UnregisterDevice,
    UpdatePreferences,
    UpdateProfile,
    UpsertProduct,
    UserRegistered,
    VoidPayment,
)

DAY_MS = 24 * 3600 * 1000
DLQ_SUFFIX = ".dlq"
#: Where a per-partner topic's name holds the partner's id.
PARTNER = "{partner}"
#: A partner's id as topic names and buyer accounts spell it.
PARTNER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    key: str
    messages: tuple[type[Message], ...]
    description: str
    retention_ms: int = 7 * DAY_MS
    cleanup: Literal["delete", "compact"] = "delete"
    replication: int = 1
    has_dlq: bool = True
    extra_config: tuple[tuple[str, str], ...] = ()
    #: The dead letter topic's name when it is not ``name + ".dlq"`` (one for a family of topics).
    dlq_name: str | None = None

    def name_for(self, prefix: str = "") -> str:
        return f"{prefix}{self.name}"

    @property
    def per_partner(self) -> bool:
        """A family of topics, one per partner (``shop.partner.{partner}.commands``), not one topic."""
        return PARTNER in self.name

    def for_partner(self, partner_id: str) -> Topic:
        """The partner's own topic of this family; ValueError for an id a topic name cannot hold."""
        if not self.per_partner:
            raise ValueError(f"{self.name} is one topic, not one per partner")
        if not PARTNER_ID.match(partner_id):
            raise ValueError(f"partner id {partner_id!r}: 1 to 64 letters, digits, - or _")
        return replace(self, name=self.name.replace(PARTNER, partner_id), dlq_name=self._dlq_name)

    def partner_of(self, broker_name: str, prefix: str = "") -> str | None:
        """The partner whose topic of this family ``broker_name`` is (under ``prefix``), or None."""
        if not self.per_partner:
            return None
        head, tail = self.name_for(prefix).split(PARTNER)
        if not (broker_name.startswith(head) and broker_name.endswith(tail)):
            return None
        partner_id = broker_name[len(head) : len(broker_name) - len(tail)]
        return partner_id if PARTNER_ID.match(partner_id) else None

    def members(self, broker_names: Iterable[str], prefix: str = "") -> list[str]:
        """The names among ``broker_names`` that are partners' topics of this family, sorted."""
        return sorted(name for name in broker_names if self.partner_of(name, prefix) is not None)

    @property
    def _dlq_name(self) -> str:
        return self.dlq_name or self.name.replace("." + PARTNER, "") + DLQ_SUFFIX

    @property
    def config(self) -> dict[str, str]:
        return {
            "cleanup.policy": self.cleanup,
            "retention.ms": str(self.retention_ms),
            **dict(self.extra_config),
        }

    @property
    def dead_letter(self) -> Topic | None:
        if not self.has_dlq:
            return None
        return Topic(
            name=self._dlq_name if self.per_partner or self.dlq_name else self.name + DLQ_SUFFIX,
            partitions=3,
            key=f"{self.key} of the failed record",
            messages=(),
            description=f"records of {self.name} that failed, with the original bytes and the reason in headers",
            retention_ms=30 * DAY_MS,
            has_dlq=False,
        )


COMPACTED = (("min.cleanable.dirty.ratio", "0.1"), ("segment.ms", str(3600 * 1000)))

ORDER_COMMANDS = Topic(
    "shop.orders.commands",
    6,
    "order_id",
    (PlaceOrder, PlaceOrderV2, PlaceOrderV3, CancelOrder, MarkOrderShipped, MarkOrderDelivered, RequestRefund),
    "order commands from the ingress",
)
PARTNER_COMMANDS = Topic(
    f"shop.partner.{PARTNER}.commands",
    6,
    "order_id or sku",
    (PlaceOrder, PlaceOrderV2, AdjustStock, UpsertProduct),
    "one topic per partner (created by `shopstream partner-add`, writable by that partner alone): the"
    " commands it produces straight to Kafka, the partner being the one the topic names; one DLQ for all",
)
ORDER_EVENTS = Topic(
    "shop.orders.events",
    6,
    "order_id",
    (OrderPlaced, OrderConfirmed, OrderCancelled, OrderShipped, OrderDelivered),
    "the order lifecycle",
    retention_ms=30 * DAY_MS,
)
ORDER_INBOX = Topic(
    "shop.orders.inbox",
    6,
    "order_id",
    (
        PlaceOrder,
        PlaceOrderV2,
        PlaceOrderV3,
        CancelOrder,
        MarkOrderShipped,
        MarkOrderDelivered,
        RequestRefund,
        StockReserved,
        StockRejected,
        PaymentAuthorized,
        PaymentDeclined,
        ExpireOrderStep,
    ),
    "everything the orders saga acts on, one log per order (the orders flow forwards the commands,"
    " inventory and payments answer here): a replay after a crash meets an order's messages in the"
    " order the first run did",
)
INVENTORY_COMMANDS = Topic(
    "shop.inventory.commands",
    6,
    "sku",
    (ReserveStock, ReleaseStock, CommitStock, AdjustStock),
    "stock reservations and adjustments",
)
INVENTORY_EVENTS = Topic(
    "shop.inventory.events",
    6,
    "sku",
    (StockReserved, StockRejected, StockReleased, StockCommitted, StockAdjusted),
    "what happened to stock",
    retention_ms=30 * DAY_MS,
)
STOCK_LEVELS = Topic(
    "shop.stock.levels",
    6,
    "sku",
    (StockLevelChanged,),
    "latest stock level per SKU (entity state)",
    retention_ms=-1,
    cleanup="compact",
    extra_config=COMPACTED,
)
PAYMENT_COMMANDS = Topic(
    "shop.payments.commands",
    6,
    "order_id",
    (AuthorizePayment, AuthorizePaymentV2, CapturePayment, VoidPayment, RefundPayment),
    "payment gateway operations",
)
PAYMENT_EVENTS = Topic(
    "shop.payments.events",
    6,
    "order_id",
    (PaymentAuthorized, PaymentDeclined, PaymentCaptured, PaymentVoided, PaymentRefunded),
    "payment outcomes",
    retention_ms=30 * DAY_MS,
)
USER_COMMANDS = Topic(
    "shop.users.commands",
    3,
    "user_id",
    (
        RegisterUser,
        UpdateProfile,
        UpdatePreferences,
        AddAddress,
        ChangeAddress,
        RemoveAddress,
        RegisterDevice,
        UnregisterDevice,
        GrantRole,
        RevokeRole,
        SuspendAccount,
        ReinstateAccount,
        CloseAccount,
    ),
    "user registration, profiles, preferences, addresses, push devices; staff roles and account status"
    " (from `shopstream user`)",
)
USER_EVENTS = Topic(
    "shop.users.events",
    3,
    "user_id",
    (
        UserRegistered,
        ProfileUpdated,
        PreferencesUpdated,
        AddressAdded,
        AddressChanged,
        AddressRemoved,
        DeviceRegistered,
        DeviceUnregistered,
        RoleGranted,
        RoleRevoked,
        AccountSuspended,
        AccountReinstated,
        AccountClosed,
    ),
    "user state (entity state), and each staff role and account status an operator changed (the audit log keeps them)",
    retention_ms=-1,
    cleanup="compact",
    extra_config=COMPACTED,
)
CATALOG_COMMANDS = Topic("shop.catalog.commands", 3, "sku", (UpsertProduct,), "product upserts")
CATALOG_EVENTS = Topic(
    "shop.catalog.events",
    3,
    "sku",
    (ProductUpserted,),
    "product state (entity state)",
    retention_ms=-1,
    cleanup="compact",
    extra_config=COMPACTED,
)
NOTIFICATION_COMMANDS = Topic(
    "shop.notifications.commands",
    3,
    "user_id",
    (SendNotification,),
    "email, SMS and push to send",
)
NOTIFICATION_EVENTS = Topic(
    "shop.notifications.events",
    3,
    "user_id",
    (NotificationSent, NotificationFailed),
    "delivery outcomes",
    retention_ms=30 * DAY_MS,
)
DLQ_REPLAYS = Topic(
    "shop.dlq.replays",
    1,
    "DLQ record id",
    (),
    "which DLQ records were replayed, when, to where (so a replay happens once)",
    retention_ms=-1,
    cleanup="compact",
    has_dlq=False,
)

LOGS = Topic(
    "shop.logs",
    3,
    "service.name",
    (),
    "every process's log records, one ECS JSON document each (topology/logs.py), for the logs sink to index",
    retention_ms=3 * DAY_MS,
)

TOPICS: tuple[Topic, ...] = (
    ORDER_COMMANDS,
    PARTNER_COMMANDS,
    ORDER_EVENTS,
    ORDER_INBOX,
    INVENTORY_COMMANDS,
    INVENTORY_EVENTS,
    STOCK_LEVELS,
    PAYMENT_COMMANDS,
    PAYMENT_EVENTS,
    USER_COMMANDS,
    USER_EVENTS,
    CATALOG_COMMANDS,
    CATALOG_EVENTS,
    NOTIFICATION_COMMANDS,
    NOTIFICATION_EVENTS,
    DLQ_REPLAYS,
    LOGS,
)


def all_topics() -> tuple[Topic, ...]:
    """Every topic including the dead letter topics, in declaration order.

    A per-partner family is not one topic: its members are made one at a time, by
    ``shopstream partner-add``; its one dead letter topic is here.
    """
    found: list[Topic] = []
    for topic in TOPICS:
        if not topic.per_partner:
            found.append(topic)
        if topic.dead_letter is not None:
            found.append(topic.dead_letter)
    return tuple(found)


def by_name(name: str) -> Topic:
    for topic in all_topics():
        if topic.name == name:
            return topic
    raise KeyError(name)


class DeclaredMessages:
    """The message types each of some topics carries, by broker name (under a topic prefix).

    What a consumer reads must be of a type declared on the topic it came from; anything
    else is a dead letter, with ``misplaced``'s reason.
    """

    def __init__(self, topics: Iterable[Topic], prefix: str = "") -> None:
        topics = tuple(topics)
        self._messages = {topic.name_for(prefix): topic.messages for topic in topics if not topic.per_partner}
        self._families = tuple(topic for topic in topics if topic.per_partner)
        self._prefix = prefix

    def declared(self, topic_name: str) -> tuple[type[Message], ...]:
        """The message types ``topic_name`` carries (a partner's topic: its family's)."""
        found = self._messages.get(topic_name)
        if found is not None:
            return found
        family = next((f for f in self._families if f.partner_of(topic_name, self._prefix) is not None), None)
        return family.messages if family is not None else ()

    def misplaced(self, topic_name: str, envelope: Envelope) -> str | None:
        """Why the message does not belong on ``topic_name``; None when its type is declared there."""
        if isinstance(envelope.payload, self.declared(topic_name)):
            return None
        return f"{envelope.type} does not belong on {topic_name}"
