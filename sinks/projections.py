"""What each event means for the read models: rows, and how rows of one key merge.

Pure: no I/O, no clock. Every store's sink projects events through here, so PostgreSQL,
Redis, Elasticsearch and MongoDB agree on what an order, a payment or a product is.

The merge rule makes a store's contents a function of the *set* of events it has seen,
not of their order or repetition: each entity row carries the ``seq`` of the newest event
that touched it (``version``), and each column takes its value from the newest event that
provides it (a column an event does not provide is ``None`` in its row). This holds
because every column is either a *fact* (the same value in every event that carries it,
like an order's customer) or *latest* (carried by every event of the entity, like status).
Append-only tables (order lines, history, refunds) keep the first row per key, and their
rows never differ between replays. A user's preferences, addresses, devices and status are a
row each in a table of their own, filled only by the events that give all of it (a whole
JSON document, a whole list).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import msgspec

from topology.envelope import Envelope
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
    NotificationFailed,
    NotificationSent,
    OrderCancelled,
    OrderConfirmed,
    OrderDelivered,
    OrderLine,
    OrderPlaced,
    OrderShipped,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRefunded,
    PaymentVoided,
    PreferencesUpdated,
    ProductUpserted,
    ProfileUpdated,
    RoleGranted,
    RoleRevoked,
    StockLevelChanged,
    UserRegistered,
)
from topology.stores import (
    NOTIFICATIONS,
    ORDER_HISTORY,
    ORDER_LINES,
    ORDERS,
    PAYMENT_REFUNDS,
    PAYMENTS,
    POSTGRES_TABLES,
    PRODUCTS,
    STOCK,
    USER_ADDRESSES,
    USER_DEVICES,
    USER_PREFERENCES,
    USER_STATUS,
    USERS,
    Key,
    Row,
    Table,
)
from topology.stores.search import IN_STOCK, STOCK_AVAILABLE, STOCK_FIELDS, STOCK_VERSION, SUGGEST


class Unversioned(ValueError):
    """An entity event without ``seq``: no version guard can place it, so it is never written."""


def _entity(table: Table, envelope: Envelope, **values: Any) -> tuple[Table, Row]:
    if envelope.seq is None:
        raise Unversioned(f"{envelope.type} {envelope.id} has no seq (entity version); it cannot be applied in order")
    row: Row = dict.fromkeys(table.columns)
    row.update(values)
    row["version"] = envelope.seq
    return table, row


def _order(envelope: Envelope, status: str, **values: Any) -> list[tuple[Table, Row]]:
    """The order's row and its history entry."""
    payload: Any = envelope.payload
    at = envelope.occurred_at
    entity = _entity(ORDERS, envelope, order_id=payload.order_id, status=status, updated_at=at, **values)
    history = {
        "order_id": payload.order_id,
        "version": envelope.seq,
        "status": status,
        "occurred_at": at,
        "event_id": envelope.id,
    }
    return [entity, (ORDER_HISTORY, history)]


def _payment(envelope: Envelope, status: str, **values: Any) -> tuple[Table, Row]:
    payload: Any = envelope.payload
    return _entity(
        PAYMENTS, envelope, order_id=payload.order_id, status=status, updated_at=envelope.occurred_at, **values
    )


def _line(order_id: str, n: int, line: OrderLine) -> tuple[Table, Row]:
    row = {
        "order_id": order_id,
        "line_no": n,
        "sku": line.sku,
        "quantity": line.quantity,
        "unit_amount": line.unit_price.amount,
        "currency": line.unit_price.currency,
    }
    return ORDER_LINES, row


def read_model_rows(envelope: Envelope) -> list[tuple[Table, Row]]:
    """The rows one event writes to PostgreSQL (none for events the read models do not keep)."""
    p: Message = envelope.payload
    at = envelope.occurred_at
    match p:
        case OrderPlaced():
            total = {"total_amount": p.total.amount, "currency": p.total.currency}
            placed = _order(envelope, "placed", customer_id=p.customer_id, placed_at=at, **total)
            return placed + [_line(p.order_id, n, line) for n, line in enumerate(p.lines, start=1)]
        case OrderConfirmed():
            total = {"total_amount": p.total.amount, "currency": p.total.currency}
            return _order(envelope, "confirmed", customer_id=p.customer_id, **total)
        case OrderCancelled():
            return _order(envelope, "cancelled", customer_id=p.customer_id, cancel_reason=p.reason)
        case OrderShipped():
            return _order(envelope, "shipped", carrier=p.carrier, tracking_code=p.tracking_code)
        case OrderDelivered():
            return _order(envelope, "delivered")
        case PaymentAuthorized():
            amount = {"authorized_amount": p.amount.amount, "currency": p.amount.currency}
            return [_payment(envelope, "authorized", payment_id=p.payment_id, **amount)]
        case PaymentDeclined():
            return [_payment(envelope, "declined", decline_reason=p.reason)]
        case PaymentCaptured():
            amount = {"captured_amount": p.amount.amount, "currency": p.amount.currency}
            return [_payment(envelope, "captured", payment_id=p.payment_id, **amount)]
        case PaymentVoided():
            return [_payment(envelope, "voided", payment_id=p.payment_id)]
        case PaymentRefunded():
            table, row = _payment(envelope, "refunded", payment_id=p.payment_id)
            refund = {
                "order_id": p.order_id,
                "version": row["version"],
                "payment_id": p.payment_id,
                "amount": p.amount.amount,
                "currency": p.amount.currency,
                "occurred_at": at,
            }
            return [(table, row), (PAYMENT_REFUNDS, refund)]
        case StockLevelChanged():
            levels = {"total": p.total, "reserved": p.reserved, "available": p.available}
            return [_entity(STOCK, envelope, sku=p.sku, updated_at=at, **levels)]
        case UserRegistered():
            user = {"email": p.email, "name": p.name, "registered_at": at}
            status = _entity(USER_STATUS, envelope, user_id=p.user_id, status="active", reason="", updated_at=at)
            return [_entity(USERS, envelope, user_id=p.user_id, updated_at=at, **user), status]
        case ProfileUpdated():
            return [_entity(USERS, envelope, user_id=p.user_id, name=p.name, phone=p.phone, updated_at=at)]
        case RoleGranted() | RoleRevoked():  # the user's version moves on; roles live in the credentials
            return [_entity(USERS, envelope, user_id=p.user_id, updated_at=at)]
        case (
            PreferencesUpdated()
            | AddressAdded()
            | AddressChanged()
            | AddressRemoved()
            | DeviceRegistered()
            | DeviceUnregistered()
            | AccountSuspended()
            | AccountReinstated()
            | AccountClosed()
        ):
            return [account_row(envelope, p)]
        case ProductUpserted():
            return [product_row(envelope, p)]
    return []


#: What the read models keep of a push device.
DEVICE_SHOWN = ("device_id", "platform", "registered_at")
#: The status each account event leaves the account in.
STATUS_AFTER = {AccountSuspended: "suspended", AccountReinstated: "active", AccountClosed: "closed"}


def account_row(envelope: Envelope, p: Any) -> tuple[Table, Row]:
    """The row of the part of a user's account an event states in full (jsonb columns as JSON text)."""
    at, user = envelope.occurred_at, p.user_id
    match p:
        case PreferencesUpdated():
            return _entity(USER_PREFERENCES, envelope, user_id=user, preferences=_json(p.preferences), updated_at=at)
        case AddressAdded() | AddressChanged() | AddressRemoved():
            return _entity(USER_ADDRESSES, envelope, user_id=user, addresses=_json(p.addresses), updated_at=at)
        case DeviceRegistered() | DeviceUnregistered():
            # A device's token stays on the topic, for the notifications flow: the read models show no token.
            devices = [{f: getattr(d, f) for f in DEVICE_SHOWN} for d in p.devices]
            return _entity(USER_DEVICES, envelope, user_id=user, devices=_json(devices), updated_at=at)
    status = STATUS_AFTER[type(p)]
    return _entity(USER_STATUS, envelope, user_id=user, status=status, reason=p.reason, updated_at=at)


def _json(value: object) -> str:
    return msgspec.json.encode(value).decode()


def product_row(envelope: Envelope, p: ProductUpserted) -> tuple[Table, Row]:
    return _entity(
        PRODUCTS,
        envelope,
        sku=p.sku,
        title=p.title,
        description=p.description,
        brand=p.brand,
        category=p.category,
        tags=list(p.tags),
        price_amount=p.price.amount,
        currency=p.price.currency,
        owner_partner_id=p.owner_partner_id,
        updated_at=envelope.occurred_at,
    )


def product_doc(envelope: Envelope) -> Row | None:
    """The product document search serves, or None for other events."""
    return product_row(envelope, envelope.payload)[1] if isinstance(envelope.payload, ProductUpserted) else None


def stock_doc(envelope: Envelope) -> Row | None:
    """The stock part of a product's search document (``STOCK_FIELDS``), or None for other events."""
    p = envelope.payload
    if not isinstance(p, StockLevelChanged):
        return None
    if envelope.seq is None:
        raise Unversioned(f"{envelope.type} {envelope.id} has no seq (entity version); it cannot be applied in order")
    return {"sku": p.sku, STOCK_AVAILABLE: p.available, IN_STOCK: p.available > 0, STOCK_VERSION: envelope.seq}


def merge_product_doc(stored: Row | None, new: Row) -> Row:
    """A product's search document with ``new`` folded in: the catalog part and the stock part each keep the newer.

    The two parts have their own versions (``version``, ``STOCK_VERSION``), so the result is a
    function of the set of events seen, whatever their order or repetition. ``SUGGEST`` is
    derived from the catalog part.
    """
    merged = dict(stored or {})
    merged.pop(SUGGEST, None)
    if new.get("version") is not None and new["version"] > (merged.get("version") or 0):
        merged.update({c: new[c] for c in PRODUCTS.all_columns})
    if new.get(STOCK_VERSION) is not None and new[STOCK_VERSION] > (merged.get(STOCK_VERSION) or 0):
        merged.update({c: new[c] for c in STOCK_FIELDS})
    merged["sku"] = new["sku"]
    if merged.get("title") is not None:
        merged[SUGGEST] = suggest_inputs(merged["title"], merged.get("brand") or "", merged.get("category") or "")
        merged[SUGGEST]["weight"] = 2 if merged.get(IN_STOCK) else 1  # what can be bought completes first
    return merged


#: Completion inputs per product: at most this many word suffixes of its title.
SUGGEST_SUFFIXES = 6


def suggest_inputs(title: str, brand: str, category: str) -> dict[str, Any]:
    """The completion suggester's inputs: the title, its word suffixes (a later word completes it), brand, category.

    A suffix stops before a `` - `` (what follows is a variant, like a colour) and never starts with a digit.
    """
    words = title.split(" - ")[0].split()
    suffixes = [" ".join(words[i:]) for i in range(1, min(len(words), SUGGEST_SUFFIXES)) if not words[i][0].isdigit()]
    inputs = [title, *suffixes, brand, category]
    return {"input": list(dict.fromkeys(i[:60] for i in inputs if i)), "weight": 1}


def order_doc(envelope: Envelope) -> Row | None:
    """The order document support searches (the orders row plus the SKUs), or None for other events."""
    rows = read_model_rows(envelope)
    if not rows or rows[0][0] is not ORDERS:
        return None
    doc = dict(rows[0][1])
    payload = envelope.payload
    doc["skus"] = sorted({line.sku for line in payload.lines}) if isinstance(payload, OrderPlaced) else None
    return doc


def notification_row(envelope: Envelope) -> Row | None:
    p = envelope.payload
    if not isinstance(p, NotificationSent | NotificationFailed):
        return None
    return _entity(
        NOTIFICATIONS,
        envelope,
        notification_id=p.notification_id,
        user_id=p.user_id,
        channel=p.channel,
        status="failed" if isinstance(p, NotificationFailed) else "sent",
        reason=p.reason if isinstance(p, NotificationFailed) else None,
        occurred_at=envelope.occurred_at,
    )[1]


def merge(table: Table, a: Row, b: Row) -> Row:
    """Two rows of one key as one: commutative, associative and idempotent (see the module docstring)."""
    if table.append_only:
        return a
    hi, lo = (b, a) if b["version"] > a["version"] else (a, b)
    merged = {c: hi[c] if hi[c] is not None else lo[c] for c in table.key + table.columns}
    merged["version"] = hi["version"]
    return merged


def fold(table: Table, rows: Iterable[Row]) -> dict[Key, Row]:
    """Rows merged per key."""
    out: dict[Key, Row] = {}
    for row in rows:
        key = table.key_of(row)
        seen = out.get(key)
        out[key] = row if seen is None else merge(table, seen, row)
    return out


def by_table(rows: Iterable[tuple[Table, Row]]) -> Iterator[tuple[Table, dict[Key, Row]]]:
    """Rows grouped by table (in ``POSTGRES_TABLES`` order, then any other) and folded per key."""
    grouped: dict[str, tuple[Table, list[Row]]] = {}
    for table, row in rows:
        grouped.setdefault(table.name, (table, []))[1].append(row)
    order = {t.name: i for i, t in enumerate(POSTGRES_TABLES)}
    for name in sorted(grouped, key=lambda n: order.get(n, len(order))):
        table, table_rows = grouped[name]
        yield table, fold(table, table_rows)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
