"""Stock of one SKU as a state machine: reserve, release, commit, adjust; never oversell.

All commands for a SKU arrive on one partition of the inventory command topic (keyed by
SKU) and so reach one worker's state, so reservations for the last units are decided one
at a time, whatever partition or worker the orders came from. Invariants: ``total >= 0``,
``reserved <= total``, ``available = total - reserved >= 0``.

Each SKU's owner and price come from the catalog's ``ProductUpserted`` events (read from
the catalog's event topic, keyed by SKU as the commands are). A reservation holds its
units at the catalog's price of that moment and answers with it (``StockReserved.unit_price``),
so the order is priced inside the system; a SKU the catalog has no price for is not reserved
(``StockRejected`` with the reason). An adjustment by a partner (``AdjustStock.partner_id``)
of a SKU that partner does not own is refused: it changes nothing and goes to the DLQ.

Commands are idempotent: a reservation, release or commit already decided for an order
is answered again from ``settled`` without changing stock; adjustments are remembered by
command id. Both memories are bounded (oldest forgotten first), which is safe because
duplicates come from replays of the last snapshot interval, not from long ago.

No I/O and no clock. The state is owned by the flow step that holds it, so ``handle``
updates it in place (copying a SKU's memory per command would cost more than the rest of
the step) and returns it with the messages to send.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from flows.outcome import Refusal, Send, event
from topology.messages import (
    AdjustStock,
    CommitStock,
    Message,
    Money,
    ProductUpserted,
    ReleaseStock,
    ReserveStock,
    StockAdjusted,
    StockCommitted,
    StockLevelChanged,
    StockRejected,
    StockReleased,
    StockReserved,
)
from topology.topics import INVENTORY_EVENTS, STOCK_LEVELS

Settled = Literal["rejected", "released", "committed"]
MEMORY = 10_000


@dataclass
class Stock:
    sku: str
    total: int = 0
    reserved: int = 0
    reservations: dict[str, int] = field(default_factory=dict)  # order id -> quantity held
    settled: dict[str, Settled] = field(default_factory=dict)  # order id -> final outcome, oldest first
    adjustments: dict[str, int] = field(default_factory=dict)  # applied command id -> delta, oldest first
    owner: str | None = None  # the partner that owns the SKU, from the catalog
    price: Money | None = None  # the catalog's unit price, None before the catalog has the SKU
    reserved_at: dict[str, Money] = field(default_factory=dict)  # order id -> unit price it holds its units at

    @property
    def available(self) -> int:
        return self.total - self.reserved

    def __setstate__(self, state: dict[str, object]) -> None:
        """A snapshot from before the catalog's owner and price were kept resumes with none known."""
        self.__dict__.update({"owner": None, "price": None, "reserved_at": {}} | state)


def _remember(memory: dict[str, object], key: str, value: object) -> None:
    memory[key] = value
    if len(memory) > MEMORY:
        del memory[next(iter(memory))]


def _level(stock: Stock) -> Send:
    level = StockLevelChanged(sku=stock.sku, total=stock.total, reserved=stock.reserved, available=stock.available)
    return Send(STOCK_LEVELS, stock.sku, level)


def _event(stock: Stock, message: Message) -> Send:
    return event(INVENTORY_EVENTS, stock.sku, message)  # a reservation's outcome also answers the order's saga


def _take(stock: Stock, order_id: str, outcome: Settled) -> int | None:
    held = stock.reservations.pop(order_id, None)
    stock.reserved_at.pop(order_id, None)
    if held is not None:
        stock.reserved -= held
        _remember(stock.settled, order_id, outcome)  # type: ignore[arg-type]
    return held


def handle(stock: Stock | None, message: Message, command_id: str) -> tuple[Stock | None, list[Send] | Refusal]:
    """Apply one inventory command or catalog event; returns the stock and what to send, or a refusal."""
    match message:
        case ProductUpserted(sku=sku, owner_partner_id=owner, price=price):
            stock = stock or Stock(sku)
            stock.owner, stock.price = owner, price
            return stock, []
        case ReserveStock(sku=sku, order_id=order_id, quantity=quantity):
            stock = stock or Stock(sku)
            held = stock.reservations.get(order_id)
            if held is not None:
                at = stock.reserved_at.get(order_id)
                return stock, [_event(stock, StockReserved(sku=sku, order_id=order_id, quantity=held, unit_price=at))]
            unpriced = "" if stock.price is not None else f"{sku} has no catalog price"
            rejected = StockRejected(
                sku=sku, order_id=order_id, requested=quantity, available=stock.available, reason=unpriced
            )
            earlier = stock.settled.get(order_id)
            if earlier is not None:
                return stock, [_event(stock, rejected)] if earlier == "rejected" else []
            if stock.price is None or quantity > stock.available:
                _remember(stock.settled, order_id, "rejected")  # type: ignore[arg-type]
                return stock, [_event(stock, rejected)]
            stock.reservations[order_id] = quantity
            stock.reserved_at[order_id] = stock.price
            stock.reserved += quantity
            reserved = StockReserved(sku=sku, order_id=order_id, quantity=quantity, unit_price=stock.price)
            return stock, [_event(stock, reserved), _level(stock)]
        case ReleaseStock(sku=sku, order_id=order_id):
            stock = stock or Stock(sku)
            held = _take(stock, order_id, "released")
            if held is None:
                return stock, []
            return stock, [_event(stock, StockReleased(sku=sku, order_id=order_id, quantity=held)), _level(stock)]
        case CommitStock(sku=sku, order_id=order_id):
            stock = stock or Stock(sku)
            held = _take(stock, order_id, "committed")
            if held is None:
                return stock, []
            stock.total -= held
            return stock, [_event(stock, StockCommitted(sku=sku, order_id=order_id, quantity=held)), _level(stock)]
        case AdjustStock(sku=sku, delta=delta, reason=reason, partner_id=partner_id):
            owner = stock.owner if stock is not None else None
            if partner_id is not None and partner_id != owner:
                whose = f"partner {owner}" if owner is not None else "no partner (or it is not in the catalog yet)"
                return stock, Refusal(f"SKU {sku} belongs to {whose}: partner {partner_id} may not adjust its stock")
            stock = stock or Stock(sku)
            if command_id in stock.adjustments:
                return stock, []
            free = stock.available
            applied = max(delta, -free)  # a write-off never takes reserved or missing units
            stock.total += applied
            _remember(stock.adjustments, command_id, applied)  # type: ignore[arg-type]
            note = reason if applied == delta else f"{reason} (limited to {applied}: only {free} free)"
            return stock, [_event(stock, StockAdjusted(sku=sku, delta=applied, reason=note)), _level(stock)]
    raise ValueError(f"inventory does not handle {type(message).__name__}")  # the wiring routes by type
