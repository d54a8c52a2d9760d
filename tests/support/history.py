"""A plausible history of the flows' events, deterministic from a seed: what the sinks are fed.

Each entity's events come in seq order, entities interleaved; ``shuffled_within_keys`` permutes
each entity's own history (as a replay or a rebalance may deliver it).
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from topology.envelope import Envelope, Producer
from topology.messages import (
    Message,
    Money,
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
    ProductUpserted,
    ProfileUpdated,
    StockLevelChanged,
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

BASE_TIME = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
ID_SPACE = uuid.UUID("0c0ffee0-5eed-4bad-9a11-5ca1ab1e0000")
HISTORY_TAG = "h"


@dataclass(frozen=True)
class Event:
    topic: Topic
    key: str
    envelope: Envelope


def _event(topic: Topic, key: str, message: Message, seq: int | None, n: int, tag: str) -> Event:
    envelope = Envelope(
        id=uuid.uuid5(ID_SPACE, f"{tag}/{n}").hex,
        type=message.TYPE,
        version=message.VERSION,
        occurred_at=BASE_TIME + timedelta(seconds=n),
        correlation_id=uuid.uuid5(ID_SPACE, f"{tag}/{key}").hex,
        traceparent=f"00-{uuid.uuid5(ID_SPACE, f'{tag}/{key}/trace').hex}-{n:016x}-01",
        seq=seq,
        producer=Producer("service", topic.name.split(".")[1]),
        payload=message,
    )
    return Event(topic, key, envelope)


def history(seed: int = 7, orders: int = 60, skus: int = 8, users: int = 10, tag: str = HISTORY_TAG) -> list[Event]:
    """A plausible stream of the flows' events: each entity's events in seq order, entities interleaved."""
    rng = random.Random(seed)
    per_entity: list[list[tuple[Topic, str, Message]]] = []
    sku_ids = [f"sku-{i}" for i in range(skus)]
    user_ids = [f"user-{i}" for i in range(users)]
    for user in user_ids:
        steps: list[tuple[Topic, str, Message]] = [
            (USER_EVENTS, user, UserRegistered(user_id=user, email=f"{user}@example.com", name=f"User {user}"))
        ]
        for k in range(rng.randint(0, 2)):
            phone = f"+4930{rng.randint(1000000, 9999999)}" if rng.random() < 0.7 else None
            steps.append((USER_EVENTS, user, ProfileUpdated(user_id=user, name=f"User {user} v{k}", phone=phone)))
        per_entity.append(steps)
    for sku in sku_ids:
        per_entity.append(
            [
                (
                    CATALOG_EVENTS,
                    sku,
                    ProductUpserted(
                        sku=sku,
                        title=f"{rng.choice(['red', 'blue', 'green'])} {rng.choice(['mug', 'lamp', 'chair'])} {k}",
                        description="hand made",
                        brand=rng.choice(["acme", "globex"]),
                        category=rng.choice(["kitchen", "living"]),
                        tags=rng.sample(["new", "sale", "eco", "gift"], 2),
                        price=Money(rng.randint(100, 9000), "EUR"),
                    ),
                )
                for k in range(rng.randint(1, 3))
            ]
        )
        total = rng.randint(10, 50)
        levels = []
        for _ in range(rng.randint(2, 6)):
            reserved = rng.randint(0, total)
            levels.append(
                (
                    STOCK_LEVELS,
                    sku,
                    StockLevelChanged(sku=sku, total=total, reserved=reserved, available=total - reserved),
                )
            )
        per_entity.append(levels)
    for i in range(orders):
        order_id, customer = f"order-{i}", rng.choice(user_ids)
        lines = [
            OrderLine(sku, rng.randint(1, 3), Money(rng.randint(100, 900), "EUR")) for sku in rng.sample(sku_ids, 2)
        ]
        total = Money(sum(line.quantity * line.unit_price.amount for line in lines), "EUR")
        steps = [
            (ORDER_EVENTS, order_id, OrderPlaced(order_id=order_id, customer_id=customer, lines=lines, total=total))
        ]
        pay: list[tuple[Topic, str, Message]] = []
        if rng.random() < 0.25:
            steps.append(
                (ORDER_EVENTS, order_id, OrderCancelled(order_id=order_id, customer_id=customer, reason="no stock"))
            )
            pay.append((PAYMENT_EVENTS, order_id, PaymentDeclined(order_id=order_id, reason="card declined")))
        else:
            steps.append((ORDER_EVENTS, order_id, OrderConfirmed(order_id=order_id, customer_id=customer, total=total)))
            pay.append(
                (PAYMENT_EVENTS, order_id, PaymentAuthorized(order_id=order_id, payment_id=f"pay-{i}", amount=total))
            )
            pay.append(
                (PAYMENT_EVENTS, order_id, PaymentCaptured(order_id=order_id, payment_id=f"pay-{i}", amount=total))
            )
            if rng.random() < 0.6:
                steps.append(
                    (ORDER_EVENTS, order_id, OrderShipped(order_id=order_id, carrier="dhl", tracking_code=f"T{i}"))
                )
                if rng.random() < 0.5:
                    steps.append((ORDER_EVENTS, order_id, OrderDelivered(order_id=order_id)))
            elif rng.random() < 0.3:
                refund = Money(total.amount // 2, "EUR")
                pay.append(
                    (PAYMENT_EVENTS, order_id, PaymentRefunded(order_id=order_id, payment_id=f"pay-{i}", amount=refund))
                )
        per_entity += [steps, pay]
        note = f"note-{i}"
        if rng.random() < 0.2:
            fail = NotificationFailed(notification_id=note, user_id=customer, channel="email", reason="mailbox full")
            per_entity.append([(NOTIFICATION_EVENTS, customer, fail)])
        else:
            per_entity.append(
                [
                    (
                        NOTIFICATION_EVENTS,
                        customer,
                        NotificationSent(notification_id=note, user_id=customer, channel="sms"),
                    )
                ]
            )
    # Interleave entities while keeping each one's own order; seq counts per entity.
    cursors = [0] * len(per_entity)
    out: list[Event] = []
    live = [i for i, steps in enumerate(per_entity) if steps]
    while live:
        i = rng.choice(live)
        topic, key, message = per_entity[i][cursors[i]]
        cursors[i] += 1
        out.append(_event(topic, key, message, cursors[i], len(out), f"{tag}/{i}"))
        if cursors[i] == len(per_entity[i]):
            live.remove(i)
    return out


def shuffled_within_keys(events: list[Event], seed: int) -> list[Event]:
    """The same events, each entity's history permuted (across keys the interleaving is kept)."""
    rng = random.Random(seed)
    slots: dict[tuple[str, str], list[int]] = defaultdict(list)
    for n, e in enumerate(events):
        slots[e.topic.name, e.key].append(n)
    out = list(events)
    for positions in slots.values():
        picked = [events[p] for p in positions]
        rng.shuffle(picked)
        for p, e in zip(positions, picked, strict=True):
            out[p] = e
    return out
