"""Stock of one SKU as a state machine: reserve, release, commit, adjust; never oversell.

All commands for a SKU arrive on one partition of the inventory command topic (keyed by
SKU) and so reach one worker's state, so reservations for the last units are decided one
at a time, whatever partition or worker the orders came from. Invariants: ``total >= 0``,
``reserved <= total``, ``available = total - reserved >= 0``.

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

from flows.outcome import Send, event
from topology.messages import (
    AdjustStock,
    CommitStock,
    Message,
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

    @property
    def available(self) -> int:
        return self.total - self.reserved


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
    if held is not None:
        stock.reserved -= held
        _remember(stock.settled, order_id, outcome)  # type: ignore[arg-type]
    return held


def handle(stock: Stock | None, message: Message, command_id: str) -> tuple[Stock, list[Send]]:
    """Apply one inventory command; returns the stock and what to send."""
    match message:
        case ReserveStock(sku=sku, order_id=order_id, quantity=quantity):
            stock = stock or Stock(sku)
            held = stock.reservations.get(order_id)
            if held is not None:
                return stock, [_event(stock, StockReserved(sku=sku, order_id=order_id, quantity=held))]
            rejected = StockRejected(sku=sku, order_id=order_id, requested=quantity, available=stock.available)
            earlier = stock.settled.get(order_id)
            if earlier is not None:
                return stock, [_event(stock, rejected)] if earlier == "rejected" else []
            if quantity > stock.available:
                _remember(stock.settled, order_id, "rejected")  # type: ignore[arg-type]
                return stock, [_event(stock, rejected)]
            stock.reservations[order_id] = quantity
            stock.reserved += quantity
            return stock, [_event(stock, StockReserved(sku=sku, order_id=order_id, quantity=quantity)), _level(stock)]
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
        case AdjustStock(sku=sku, delta=delta, reason=reason):
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
