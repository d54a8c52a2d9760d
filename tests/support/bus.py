"""A pure, in-memory message bus that runs the three saga logics together.

Messages wait in one FIFO queue per (topic, key), as on a Kafka partition; a test picks
which queue delivers next (any interleaving across keys), may deliver a message twice (as
after a crash and replay), may inject a customer's cancel, and may fire deadlines (an expiry is queued for the order,
as the flow sends it through the order's inbox, and may arrive after the order moved on).
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flows.inventory import logic as inventory
from flows.orders import logic as orders
from flows.outcome import Refusal, Send
from flows.payments import logic as payments
from flows.payments.fakes import FakeGateway
from flows.payments.port import dispatch
from topology.messages import (
    AdjustStock,
    CancelOrder,
    ExpireOrderStep,
    Message,
    Money,
    OrderItem,
    PlaceOrderV2,
    ProductUpserted,
)
from topology.topics import (
    INVENTORY_COMMANDS,
    INVENTORY_EVENTS,
    NOTIFICATION_COMMANDS,
    ORDER_COMMANDS,
    ORDER_EVENTS,
    ORDER_INBOX,
    PAYMENT_COMMANDS,
    PAYMENT_EVENTS,
    STOCK_LEVELS,
)

# Read by sinks and the notification flow, not by the saga: the answers reach it as copies in its inbox.
UNREAD = (ORDER_EVENTS, STOCK_LEVELS, NOTIFICATION_COMMANDS, INVENTORY_EVENTS, PAYMENT_EVENTS)
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@dataclass
class Bus:
    now: datetime = T0
    queues: dict[tuple[str, str], deque[tuple[str, Message]]] = field(default_factory=dict)
    orders: dict[str, orders.Order] = field(default_factory=dict)
    stock: dict[str, inventory.Stock] = field(default_factory=dict)
    payments: dict[str, payments.Payment] = field(default_factory=dict)
    gateway: FakeGateway = field(default_factory=FakeGateway)
    published: list[tuple[str, str, Message]] = field(default_factory=list)  # (topic, id, message) of events
    ids: itertools.count = field(default_factory=itertools.count)  # type: ignore[type-arg]
    last: dict[tuple[str, str], tuple[str, Message]] = field(default_factory=dict)
    repeated: set[str] = field(default_factory=set)  # ids delivered twice already

    def send(self, sends: list[Send]) -> None:
        for item in sends:
            message_id = f"m{next(self.ids)}"
            if item.topic in (ORDER_EVENTS, STOCK_LEVELS, NOTIFICATION_COMMANDS):
                self.published.append((item.topic.name, message_id, item.message))
            for topic, key in ((item.topic, item.key), *item.copies):  # a copy keeps the id, as emit does
                if topic not in UNREAD:
                    self.queues.setdefault((topic.name, key), deque()).append((message_id, item.message))

    def command(self, topic_name: str, key: str, message: Message) -> None:
        topic = ORDER_COMMANDS if topic_name == ORDER_COMMANDS.name else INVENTORY_COMMANDS
        self.send([Send(topic, key, message)])

    def busy(self) -> list[tuple[str, str]]:
        return sorted(k for k, q in self.queues.items() if q)

    def deliver(self, queue: tuple[str, str], duplicate: bool = False) -> None:
        """The queue's next message; with ``duplicate``, its last one again, once (a replay repeats a message once)."""
        if duplicate and queue in self.last and self.last[queue][0] not in self.repeated:
            message_id, message = self.last[queue]
            self.repeated.add(message_id)
        else:
            message_id, message = self.queues[queue].popleft()
            self.last[queue] = (message_id, message)
        self.now += timedelta(milliseconds=5)
        topic = queue[0]
        if topic in (ORDER_COMMANDS.name, ORDER_INBOX.name):  # the flow forwards commands to the inbox untouched
            order_id: str = message.order_id  # type: ignore[attr-defined]
            state, sends = orders.handle(self.orders.get(order_id), message, self.now, message_id)
            if state is not None:
                self.orders[order_id] = state
            self.send(sends)
        elif topic == INVENTORY_COMMANDS.name:
            sku: str = message.sku  # type: ignore[attr-defined]
            stock, sends = inventory.handle(self.stock.get(sku), message, message_id)
            if stock is not None:
                self.stock[sku] = stock
            if not isinstance(sends, Refusal):
                self.send(sends)
        elif topic == PAYMENT_COMMANDS.name:
            order_id = message.order_id  # type: ignore[attr-defined]
            payment, plan = payments.plan(self.payments.get(order_id), message, message_id)
            if isinstance(plan, payments.Call):
                result = dispatch(self.gateway, plan, order_id)
                payment, sends = payments.settle(payment, plan, result, message_id)
            else:
                sends = plan
            self.payments[order_id] = payment
            self.send(sends)

    def fire_deadlines(self, after: timedelta) -> None:
        self.now += after
        for order_id, order in sorted(self.orders.items()):
            if order.deadline is not None and order.deadline <= self.now and order.status not in orders.TERMINAL:
                expire = ExpireOrderStep(order_id=order_id, deadline=order.deadline)
                self.send([Send(ORDER_INBOX, order_id, expire)])

    def drain(self, limit: int = 100_000) -> None:
        for _ in range(limit):
            busy = self.busy()
            if not busy:
                return
            self.deliver(busy[0])
        raise AssertionError("the bus never went quiet")


PRICE = Money(250, "EUR")  # every SKU's catalog price unless a test sets another


def place(bus: Bus, order_id: str, lines: list[tuple[str, int]], token: str = "tok_visa") -> None:
    command = PlaceOrderV2(
        order_id=order_id,
        customer_id=f"c-{order_id}",
        lines=[OrderItem(sku, qty) for sku, qty in lines],
        payment_token=token,
    )
    bus.command(ORDER_COMMANDS.name, order_id, command)


def price(bus: Bus, sku: str, unit_price: Money = PRICE) -> None:
    """The catalog's product for ``sku`` reaches the inventory flow (at once: its own queue is not modelled)."""
    product = ProductUpserted(
        sku=sku, title=sku, description="", brand="", category="", tags=[], price=unit_price, owner_partner_id=None
    )
    stock, _ = inventory.handle(bus.stock.get(sku), product, f"catalog-{sku}-{unit_price.amount}")
    assert stock is not None
    bus.stock[sku] = stock


def restock(bus: Bus, sku: str, units: int) -> None:
    """Stock for ``sku``, which the catalog prices at ``PRICE`` (unless the SKU has a price already)."""
    if sku not in bus.stock or bus.stock[sku].price is None:
        price(bus, sku)
    bus.command(INVENTORY_COMMANDS.name, sku, AdjustStock(sku=sku, delta=units, reason="initial"))


def cancel(bus: Bus, order_id: str) -> None:
    bus.command(ORDER_COMMANDS.name, order_id, CancelOrder(order_id=order_id))
