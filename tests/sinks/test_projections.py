"""The merge rule of the read models, as properties over real event histories (pure, no stack)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sinks.projections import by_table, fold, merge, read_model_rows
from tests.support.history import HISTORY_TAG, history, shuffled_within_keys
from topology.stores import POSTGRES_TABLES, Row, Table

EVENTS = history(seed=3, orders=25, skus=4, users=4, tag=HISTORY_TAG)
ROWS = [row for e in EVENTS for row in read_model_rows(e.envelope)]


def state(rows: list[tuple[Table, Row]]) -> dict[str, dict[tuple[object, ...], Row]]:
    return {table.name: folded for table, folded in by_table(rows)}


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False))
def test_any_order_and_any_repetition_fold_to_the_same_state(rng: object) -> None:
    reordered = shuffled_within_keys(EVENTS, seed=rng.randint(0, 10**6))  # type: ignore[attr-defined]
    repeated = reordered + [e for e in EVENTS if rng.random() < 0.3]  # type: ignore[attr-defined]
    rows = [row for e in repeated for row in read_model_rows(e.envelope)]
    assert state(rows) == state(ROWS)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_merge_is_associative_commutative_and_idempotent(data: st.DataObject) -> None:
    table, rows = data.draw(st.sampled_from([(t, [r for tt, r in ROWS if tt is t]) for t in POSTGRES_TABLES]))
    key = table.key_of(data.draw(st.sampled_from(rows)))
    same_key = [r for r in rows if table.key_of(r) == key]
    a, b, c = (data.draw(st.sampled_from(same_key)) for _ in range(3))
    assert merge(table, a, b) == merge(table, b, a) or table.append_only
    assert merge(table, merge(table, a, b), c) == merge(table, a, merge(table, b, c))
    assert merge(table, a, a) == a


def test_the_newest_event_decides_and_older_facts_fill_in() -> None:
    orders = fold(POSTGRES_TABLES[0], [r for t, r in ROWS if t.name == "orders"])
    delivered = [o for o in orders.values() if o["status"] == "delivered"]
    assert delivered, "the history has delivered orders"
    for order in delivered:
        assert order["customer_id"] and order["placed_at"] and order["carrier"], order


def test_each_entity_ends_as_its_newest_event_says() -> None:
    folded = state(ROWS)
    newest: dict[tuple[str, str], object] = {}
    for e in EVENTS:  # the history lists each entity's events in seq order
        newest[e.topic.name, e.key] = e.envelope.payload
    for (topic, key), payload in newest.items():
        kind = type(payload).__name__
        if topic == "shop.orders.events":
            status = {"OrderPlaced": "placed", "OrderConfirmed": "confirmed", "OrderCancelled": "cancelled"}
            status |= {"OrderShipped": "shipped", "OrderDelivered": "delivered"}
            assert folded["orders"][(key,)]["status"] == status[kind]
        elif topic == "shop.stock.levels":
            assert folded["stock"][(key,)]["available"] == payload.available  # type: ignore[attr-defined]
        elif topic == "shop.catalog.events":
            assert folded["products"][(key,)]["title"] == payload.title  # type: ignore[attr-defined]
        elif topic == "shop.payments.events":
            assert folded["payments"][(key,)]["status"] == kind.removeprefix("Payment").lower()
    lines = folded["order_lines"]
    placed = [e.envelope.payload for e in EVENTS if e.envelope.type == "OrderPlaced"]
    assert len(lines) == sum(len(p.lines) for p in placed)  # type: ignore[attr-defined]
