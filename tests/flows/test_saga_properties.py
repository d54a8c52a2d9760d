"""Property tests of the saga: any interleaving, duplicate and cancel keeps the invariants."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.orders.logic import PAYMENT_TIMEOUT, TERMINAL
from tests.support.bus import PRICE, Bus, cancel, place, price, restock
from topology.messages import AdjustStock, MarkOrderDelivered, MarkOrderShipped, Money, RequestRefund
from topology.topics import INVENTORY_COMMANDS, NOTIFICATION_COMMANDS, ORDER_COMMANDS, ORDER_EVENTS

SKUS = ("red", "blue", "green")


def check_invariants(bus: Bus) -> None:
    for stock in bus.stock.values():
        assert stock.total >= 0
        assert stock.reserved == sum(stock.reservations.values())
        assert stock.available >= 0
        assert stock.reserved + stock.available == stock.total
    by_order: dict[str, int] = {}
    for payment in bus.gateway.payments.values():
        by_order[str(payment["order_id"])] = by_order.get(str(payment["order_id"]), 0) + 1
        assert int(payment["refunded"]) <= int(payment["captured"]) <= int(payment["amount"])
    assert all(count == 1 for count in by_order.values()), f"a card was authorized twice: {by_order}"


def check_quiet(bus: Bus, initial: dict[str, int]) -> None:
    check_invariants(bus)
    for order in bus.orders.values():
        assert order.status in TERMINAL, f"{order.order_id} stuck in {order.status}"
        if order.status == "cancelled":
            for stock in bus.stock.values():
                assert order.order_id not in stock.reservations, f"cancelled {order.order_id} still holds stock"
            charged = [p for p in bus.gateway.payments.values() if p["order_id"] == order.order_id]
            for payment in charged:
                assert payment["state"] in ("voided", "refunded"), f"cancelled {order.order_id} left {payment}"
                assert payment["captured"] == payment["refunded"]
        else:
            assert all(stock.reservations.get(order.order_id) is None for stock in bus.stock.values())
            priced = sum(qty * PRICE.amount for _, qty in order.quantities)
            assert order.total == Money(priced, PRICE.currency), "a confirmed order costs what the catalog asks"
            [payment] = [p for p in bus.gateway.payments.values() if p["order_id"] == order.order_id]
            assert payment["captured"] == priced
    sold: dict[str, int] = {}
    for order in bus.orders.values():
        if order.status != "cancelled":
            for sku, qty in order.quantities:
                sold[sku] = sold.get(sku, 0) + qty
    for sku, units in initial.items():
        assert sold.get(sku, 0) <= units, f"oversold {sku}: {sold.get(sku)} of {units}"
        assert bus.stock[sku].total == units - sold.get(sku, 0), "stock does not add up"


order_specs = st.lists(
    st.tuples(
        st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 4)), min_size=1, max_size=3),
        st.sampled_from(["tok_visa", "tok_visa", "tok_visa", "tok_decline"]),
        st.booleans(),  # the customer cancels at some point
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stock=st.fixed_dictionaries({sku: st.integers(0, 8) for sku in SKUS}),
    specs=order_specs,
    schedule=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 9)), max_size=400),
)
def test_any_interleaving_keeps_the_invariants(stock: dict[str, int], specs, schedule) -> None:  # type: ignore[no-untyped-def]
    bus = Bus()
    for sku, units in stock.items():
        restock(bus, sku, units)
    bus.drain()
    for index, (lines, token, _) in enumerate(specs):
        place(bus, f"o{index}", lines, token)
    cancels = [f"o{i}" for i, spec in enumerate(specs) if spec[2]]
    for pick, action in schedule:
        busy = bus.busy()
        if action == 0 and cancels:
            cancel(bus, cancels.pop())
        elif busy:
            bus.deliver(busy[pick % len(busy)], duplicate=action == 1)
        check_invariants(bus)
    for order_id in cancels:
        cancel(bus, order_id)
    bus.drain()
    bus.fire_deadlines(PAYMENT_TIMEOUT + timedelta(seconds=1))
    bus.drain()
    check_quiet(bus, stock)


@settings(max_examples=60, deadline=None)
@given(stock=st.integers(0, 6), orders=st.integers(1, 15), dup=st.integers(0, 5))
def test_racing_for_the_last_units_never_oversells(stock: int, orders: int, dup: int) -> None:
    bus = Bus()
    restock(bus, "last", stock)
    bus.drain()
    for index in range(orders):
        place(bus, f"o{index}", [("last", 1)])
    steps = 0
    while bus.busy():
        busy = bus.busy()
        bus.deliver(busy[(steps * 7) % len(busy)], duplicate=steps % (dup + 2) == 1)
        check_invariants(bus)
        steps += 1
    confirmed = [o for o in bus.orders.values() if o.status == "confirmed"]
    assert len(confirmed) == min(stock, orders)
    check_quiet(bus, {"last": stock})


def test_a_silent_payment_gateway_times_out_and_compensates() -> None:
    bus = Bus()
    restock(bus, "red", 3)
    bus.drain()
    place(bus, "o1", [("red", 2)])
    while bus.busy() and bus.busy()[0][0] != "shop.payments.commands":
        bus.deliver(bus.busy()[0])
    assert bus.orders["o1"].status == "authorizing"
    bus.queues.pop(("shop.payments.commands", "o1"))  # the gateway never answers
    bus.fire_deadlines(PAYMENT_TIMEOUT + timedelta(seconds=1))
    bus.drain()
    assert bus.orders["o1"].status == "cancelled"
    assert "payment authorization timed out" in bus.orders["o1"].reason
    assert bus.stock["red"].available == 3
    check_quiet(bus, {"red": 3})


def test_cancel_after_confirmation_refunds_and_restocks() -> None:
    bus = Bus()
    restock(bus, "red", 3)
    bus.drain()
    place(bus, "o1", [("red", 2)])
    bus.drain()
    assert bus.orders["o1"].status == "confirmed"
    assert bus.stock["red"].total == 1
    cancel(bus, "o1")
    bus.drain()
    assert bus.orders["o1"].status == "cancelled"
    assert bus.stock["red"].total == 3
    [payment] = bus.gateway.payments.values()
    assert payment["captured"] == payment["refunded"] == 500


def test_partial_refunds_add_up_and_a_repeated_request_refunds_once() -> None:
    bus = Bus()
    restock(bus, "red", 3)
    place(bus, "o1", [("red", 2)])
    bus.drain()
    bus.command(ORDER_COMMANDS.name, "o1", RequestRefund(order_id="o1", amount=Money(100, "EUR"), reason="dented"))
    queue = (ORDER_COMMANDS.name, "o1")
    bus.deliver(queue)
    bus.deliver(queue, duplicate=True)  # the same command again, as a replay can bring it
    bus.drain()
    [payment] = bus.gateway.payments.values()
    assert payment["refunded"] == 100
    bus.command(ORDER_COMMANDS.name, "o1", RequestRefund(order_id="o1", amount=Money(400, "EUR"), reason="lost"))
    bus.drain()
    [payment] = bus.gateway.payments.values()
    assert payment["captured"] == payment["refunded"] == 500, "the gateway's answers are not counted twice"


def test_a_price_change_before_the_reservation_is_what_the_order_costs() -> None:
    bus = Bus()
    restock(bus, "red", 5)
    restock(bus, "blue", 5)
    bus.drain()
    place(bus, "o1", [("red", 2), ("blue", 1)])
    bus.deliver((ORDER_COMMANDS.name, "o1"))  # placed: its reservations are on their way
    price(bus, "red", Money(400, "EUR"))  # the catalog changes red's price meanwhile
    bus.drain()
    order = bus.orders["o1"]
    assert order.status == "confirmed"
    assert order.total == Money(2 * 400 + 250, "EUR"), "each SKU at the price its stock was reserved at"
    price(bus, "red", Money(100, "EUR"))  # a change after the reservation changes nothing
    [payment] = bus.gateway.payments.values()
    assert payment["captured"] == 1050
    placed = [m for topic, _, m in bus.published if topic == ORDER_EVENTS.name and type(m).__name__ == "OrderPlaced"]
    assert [(line.sku, line.unit_price.amount) for line in placed[0].lines] == [("blue", 250), ("red", 400)]  # type: ignore[attr-defined]


def test_a_sku_without_a_catalog_price_is_not_reserved_and_the_order_is_cancelled() -> None:
    bus = Bus()
    restock(bus, "red", 5)
    bus.command(INVENTORY_COMMANDS.name, "plain", AdjustStock(sku="plain", delta=5, reason="no product"))
    bus.drain()
    place(bus, "o1", [("red", 1), ("plain", 1)])
    bus.drain()
    order = bus.orders["o1"]
    assert order.status == "cancelled" and order.reason == "plain has no catalog price"
    assert bus.stock["red"].available == 5 and bus.stock["plain"].available == 5, "nothing stays held"
    assert bus.gateway.payments == {}, "nothing charged"
    events = [type(m).__name__ for topic, _, m in bus.published if topic == ORDER_EVENTS.name]
    assert events == ["OrderCancelled"], "never priced, so never announced as placed"


def test_shipping_and_delivery_are_told_to_the_customer_once_and_wrong_states_change_nothing() -> None:
    bus = Bus()
    restock(bus, "red", 3)
    place(bus, "o1", [("red", 1)])
    place(bus, "o2", [("red", 1)])
    bus.command(ORDER_COMMANDS.name, "o1", MarkOrderDelivered(order_id="o1"))  # not shipped yet: ignored
    bus.drain()
    cancel(bus, "o2")
    bus.drain()
    bus.command(ORDER_COMMANDS.name, "o2", MarkOrderShipped(order_id="o2", carrier="DHL", tracking_code="X"))
    queue = (ORDER_COMMANDS.name, "o1")
    bus.command(ORDER_COMMANDS.name, "o1", MarkOrderShipped(order_id="o1", carrier="DHL", tracking_code="JD0146 77"))
    bus.deliver(queue)
    bus.deliver(queue, duplicate=True)  # the same command again, as a replay can bring it
    bus.command(ORDER_COMMANDS.name, "o1", MarkOrderShipped(order_id="o1", carrier="UPS", tracking_code="1Z9"))
    bus.drain()
    assert bus.orders["o1"].status == "shipped" and bus.orders["o2"].status == "cancelled"
    bus.command(ORDER_COMMANDS.name, "o1", MarkOrderDelivered(order_id="o1"))
    bus.deliver(queue)
    bus.deliver(queue, duplicate=True)
    bus.drain()
    assert bus.orders["o1"].status == "delivered"
    events = [type(m).__name__ for topic, _, m in bus.published if topic == ORDER_EVENTS.name and m.order_id == "o1"]  # type: ignore[attr-defined]
    assert events == ["OrderPlaced", "OrderConfirmed", "OrderShipped", "OrderDelivered"]
    notes = [m for topic, _, m in bus.published if topic == NOTIFICATION_COMMANDS.name]
    told = [(n.notification_id, n.user_id, n.template) for n in notes]  # type: ignore[attr-defined]
    assert told == [
        ("o1.order-confirmed", "c-o1", "order-confirmed"),
        ("o2.order-confirmed", "c-o2", "order-confirmed"),
        ("o2.order-cancelled", "c-o2", "order-cancelled"),
        ("o1.order-shipped", "c-o1", "order-shipped"),
        ("o1.order-delivered", "c-o1", "order-delivered"),
    ]
    shipped = notes[3].body  # type: ignore[attr-defined]
    assert "DHL" in shipped and "JD0146 77" in shipped, shipped
    assert "UPS" not in shipped and "o1" in notes[4].body  # type: ignore[attr-defined]
