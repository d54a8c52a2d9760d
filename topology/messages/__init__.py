"""Every message type of Shopstream, declared once as frozen msgspec Structs.

Commands are imperative (``PlaceOrder``), events past tense (``OrderPlaced``). Each has a
``TYPE`` and a ``VERSION``; the envelope (``topology.envelope``) carries both, and
decoding looks the pair up in ``REGISTRY``.
"""

from __future__ import annotations

from topology.messages.base import Message, Money
from topology.messages.catalog import ProductUpserted, UpsertProduct
from topology.messages.inventory import (
    AdjustStock,
    CommitStock,
    ReleaseStock,
    ReserveStock,
    StockAdjusted,
    StockCommitted,
    StockLevelChanged,
    StockRejected,
    StockReleased,
    StockReserved,
)
from topology.messages.notifications import NotificationFailed, NotificationSent, SendNotification
from topology.messages.orders import (
    CancelOrder,
    MarkOrderDelivered,
    MarkOrderShipped,
    OrderCancelled,
    OrderConfirmed,
    OrderDelivered,
    OrderLine,
    OrderPlaced,
    OrderShipped,
    PlaceOrder,
    RequestRefund,
)
from topology.messages.payments import (
    AuthorizePayment,
    CapturePayment,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRefunded,
    PaymentVoided,
    RefundPayment,
    VoidPayment,
)
from topology.messages.users import ProfileUpdated, RegisterUser, UpdateProfile, UserRegistered

ALL_MESSAGES: tuple[type[Message], ...] = (
    PlaceOrder,
    CancelOrder,
    MarkOrderShipped,
    MarkOrderDelivered,
    RequestRefund,
    OrderPlaced,
    OrderConfirmed,
    OrderCancelled,
    OrderShipped,
    OrderDelivered,
    ReserveStock,
    ReleaseStock,
    CommitStock,
    AdjustStock,
    StockReserved,
    StockRejected,
    StockReleased,
    StockCommitted,
    StockAdjusted,
    StockLevelChanged,
    AuthorizePayment,
    CapturePayment,
    VoidPayment,
    RefundPayment,
    PaymentAuthorized,
    PaymentDeclined,
    PaymentCaptured,
    PaymentVoided,
    PaymentRefunded,
    RegisterUser,
    UpdateProfile,
    UserRegistered,
    ProfileUpdated,
    UpsertProduct,
    ProductUpserted,
    SendNotification,
    NotificationSent,
    NotificationFailed,
)

REGISTRY: dict[tuple[str, int], type[Message]] = {(m.TYPE, m.VERSION): m for m in ALL_MESSAGES}

__all__ = [
    "ALL_MESSAGES",
    "REGISTRY",
    "AdjustStock",
    "AuthorizePayment",
    "CancelOrder",
    "CapturePayment",
    "CommitStock",
    "MarkOrderDelivered",
    "MarkOrderShipped",
    "Message",
    "Money",
    "NotificationFailed",
    "NotificationSent",
    "OrderCancelled",
    "OrderConfirmed",
    "OrderDelivered",
    "OrderLine",
    "OrderPlaced",
    "OrderShipped",
    "PaymentAuthorized",
    "PaymentCaptured",
    "PaymentDeclined",
    "PaymentRefunded",
    "PaymentVoided",
    "PlaceOrder",
    "ProductUpserted",
    "ProfileUpdated",
    "RefundPayment",
    "RegisterUser",
    "ReleaseStock",
    "RequestRefund",
    "ReserveStock",
    "SendNotification",
    "StockAdjusted",
    "StockCommitted",
    "StockLevelChanged",
    "StockRejected",
    "StockReleased",
    "StockReserved",
    "UpdateProfile",
    "UpsertProduct",
    "UserRegistered",
    "VoidPayment",
]
