"""The flows' own metrics: business counters, dead letters by reason, calls by outcome, keys held in state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, TestingSource, run_main
from prometheus_client import REGISTRY

from flows import metrics
from flows.exceptions import ChannelUnavailable
from flows.inventory.flow import build_flow as inventory_flow
from flows.kafka_output import Out
from flows.notifications.port import Delivered, Delivery, Refused
from flows.payments.fakes import FakeGateway
from flows.payments.port import Call
from tests.support.dataflows import SETTINGS, raw, record
from topology.messages import AdjustStock, Money, ProductUpserted, ReserveStock
from topology.topics import CATALOG_EVENTS, INVENTORY_COMMANDS


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def upserted(sku: str) -> ProductUpserted:
    return ProductUpserted(
        sku=sku,
        title=sku,
        description="",
        brand="",
        category="",
        tags=[],
        price=Money(250, "EUR"),
        owner_partner_id=None,
    )


def product(sku: str, offset: int) -> Any:
    return record(CATALOG_EVENTS, sku, upserted(sku), offset)


@pytest.fixture(scope="module")
def inventory_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float], list[Out]]:
    """The inventory flow, with recovery, over three SKUs: a shortage, a poison record, a misplaced type."""
    store = tmp_path_factory.mktemp("recovery")
    init_db_dir(store, 2)  # type: ignore[no-untyped-call]
    before = {
        "out": value("shop_stock_outs_total"),
        "undecodable": value("shop_flow_dead_letters_total", flow="inventory", reason="undecodable"),
        "misplaced": value("shop_flow_dead_letters_total", flow="inventory", reason="misplaced"),
        "decode": metrics.RECORDS.get(("inventory", "decode", "out"), 0),
        "handle": metrics.RECORDS.get(("inventory", "handle", "out"), 0),
    }
    items: list[Any] = [product(sku, i) for i, sku in enumerate(("a", "b", "c"))]
    items += [record(INVENTORY_COMMANDS, "a", AdjustStock(sku="a", delta=1), 3)]
    items += [
        record(INVENTORY_COMMANDS, "a", ReserveStock(sku="a", order_id=f"o{i}", quantity=1), 4 + i) for i in (1, 2)
    ]
    items += [raw(INVENTORY_COMMANDS, "a", b"not an envelope", 6)]
    items += [record(INVENTORY_COMMANDS, "b", upserted("b"), 7)]  # a catalog event on a command topic
    out: list[Out] = []
    flow = inventory_flow(TestingSource(items), TestingSink(out), SETTINGS)
    run_main(flow, epoch_interval=timedelta(0), recovery_config=RecoveryConfig(str(store)))  # type: ignore[no-untyped-call]
    return store, before, out


def test_a_shortage_is_a_stock_out_and_each_dead_letter_is_counted_by_its_reason(
    inventory_run: tuple[Path, dict[str, float], list[Out]],
) -> None:
    _, before, out = inventory_run
    assert any(m.topic and m.topic.endswith(".dlq") for m in out)
    assert value("shop_stock_outs_total") - before["out"] == 1, "o2 found no stock left"
    undecodable = value("shop_flow_dead_letters_total", flow="inventory", reason="undecodable")
    misplaced = value("shop_flow_dead_letters_total", flow="inventory", reason="misplaced")
    assert (undecodable - before["undecodable"], misplaced - before["misplaced"]) == (1, 1)


def test_records_handled_and_emitted_are_counted_per_flow_step(
    inventory_run: tuple[Path, dict[str, float], list[Out]],
) -> None:
    _, before, out = inventory_run
    decoded = metrics.RECORDS[("inventory", "decode", "out")] - before["decode"]
    emitted = metrics.RECORDS[("inventory", "handle", "out")] - before["handle"]
    assert decoded == 6, "3 products, a restock and 2 reservations handled; the poison and the misplaced are not"
    dead = sum(1 for m in out if m.topic and m.topic.endswith(".dlq"))
    assert emitted == len(out) - dead > 0, "every record the logic emitted reached the output"
    families = list(metrics.StepRecords().collect())
    samples = {tuple(s.labels.values()): s.value for s in families[0].samples}
    assert samples[("inventory", "decode", "out")] == metrics.RECORDS[("inventory", "decode", "out")]


def test_the_keys_each_stateful_step_holds_are_read_from_the_recovery_store(
    inventory_run: tuple[Path, dict[str, float], list[Out]],
) -> None:
    store, _, _ = inventory_run
    families = list(metrics.StateKeys(store, "inventory").collect())
    samples = {tuple(s.labels.values()): s.value for s in families[0].samples}
    assert samples == {("inventory", "stock"): 3}, "one key per SKU the flow has seen"


def test_business_counters_count_what_the_saga_emits() -> None:
    from flows.envelopes import Cause, emit
    from flows.outcome import Send
    from topology.messages import OrderCancelled, OrderConfirmed, OrderPlaced, PaymentDeclined
    from topology.topics import ORDER_EVENTS, PAYMENT_EVENTS

    names = ("shop_orders_placed_total", "shop_orders_confirmed_total")
    before = [value(n) for n in names]
    revenue = value("shop_revenue_minor_units_total", currency="SEK")
    stock = value("shop_orders_cancelled_total", reason="out_of_stock")
    customer = value("shop_orders_cancelled_total", reason="customer")
    declined = value("shop_payment_declines_total", reason="card_declined")
    total = Money(1234, "SEK")
    sends = [
        Send(ORDER_EVENTS, "o1", OrderPlaced(order_id="o1", customer_id="c", lines=[], total=total)),
        Send(ORDER_EVENTS, "o1", OrderConfirmed(order_id="o1", customer_id="c", total=total)),
        Send(
            ORDER_EVENTS, "o2", OrderCancelled(order_id="o2", customer_id="c", reason="out of stock: s (available 0)")
        ),
        Send(ORDER_EVENTS, "o3", OrderCancelled(order_id="o3", customer_id="c", reason="changed my mind")),
        Send(PAYMENT_EVENTS, "o4", PaymentDeclined(order_id="o4", reason="card_declined")),
    ]
    cause = Cause("c1", "c1", None, datetime.now(UTC))
    emit(sends, cause, "orders", "", 0)
    assert [value(n) - b for n, b in zip(names, before, strict=True)] == [1, 1]
    assert value("shop_revenue_minor_units_total", currency="SEK") - revenue == 1234
    assert value("shop_orders_cancelled_total", reason="out_of_stock") - stock == 1
    assert value("shop_orders_cancelled_total", reason="customer") - customer == 1
    assert value("shop_payment_declines_total", reason="card_declined") - declined == 1


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("out of stock: sku-1 (available 0)", "out_of_stock"),
        ("payment declined: card_declined", "payment_declined"),
        ("sku-1 has no catalog price", "unpriced"),
        ("payment timed out", "expired"),
        ("mixed currencies: EUR, SEK", "invalid"),
        ("customer request", "customer"),
    ],
)
def test_a_cancellation_reason_is_a_class_never_the_text(reason: str, kind: str) -> None:
    assert metrics.cancel_reason(reason) == kind


def test_gateway_calls_are_counted_by_outcome_and_timed() -> None:
    gateway = FakeGateway()
    approved = value("shop_gateway_calls_total", operation="authorize", outcome="approved")
    declined = value("shop_gateway_calls_total", operation="authorize", outcome="declined")
    timed = value("shop_gateway_call_seconds_count", operation="authorize")
    amount = Money(100, "EUR")
    metrics.begin_measured(gateway, Call("authorize", "k1", amount=amount, token="tok_visa"), "o1")()
    metrics.begin_measured(gateway, Call("authorize", "k2", amount=amount, token="tok_decline"), "o2")()
    assert value("shop_gateway_calls_total", operation="authorize", outcome="approved") - approved == 1
    assert value("shop_gateway_calls_total", operation="authorize", outcome="declined") - declined == 1
    assert value("shop_gateway_call_seconds_count", operation="authorize") - timed == 2


class Flaky:
    def __init__(self, answers: list[Delivery | Exception]) -> None:
        self.answers = answers

    def deliver(self, notification_id: str, to: str, subject: str, body: str) -> Delivery:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_channel_deliveries_are_counted_by_outcome_even_when_the_channel_is_down() -> None:
    channel = metrics.MeasuredChannel("sms", Flaky([Delivered("p1"), Refused("bad number"), ChannelUnavailable("x")]))
    before = {o: value("shop_channel_deliveries_total", channel="sms", outcome=o) for o in ("delivered", "refused")}
    down = value("shop_channel_deliveries_total", channel="sms", outcome="unavailable")
    channel.deliver("n1", "+46", "s", "b")
    channel.deliver("n2", "+46", "s", "b")
    with pytest.raises(ChannelUnavailable):
        channel.deliver("n3", "+46", "s", "b")
    for outcome, was in before.items():
        assert value("shop_channel_deliveries_total", channel="sms", outcome=outcome) - was == 1
    assert value("shop_channel_deliveries_total", channel="sms", outcome="unavailable") - down == 1


def test_an_epoch_close_is_counted_with_its_flush_and_the_gap_since_the_last() -> None:
    epochs = metrics.Epochs("catalog")
    before = value("shop_flow_epochs_total", flow="catalog")
    gaps = value("shop_flow_epoch_seconds_count", flow="catalog")
    epochs.closed()
    epochs.closed()
    epochs.flushed(0.0)
    assert value("shop_flow_epochs_total", flow="catalog") - before == 2
    assert value("shop_flow_epoch_seconds_count", flow="catalog") - gaps == 1, "a gap needs two closes"
    assert metrics.flow_of_step("orders-inventory-payments.orders.out") == "orders"
    assert metrics.flow_of_step("catalog.out") == "catalog"
