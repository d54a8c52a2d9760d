"""The flows as Bytewax dataflows, in process: TestingSource in, TestingSink out, 1 and 2 workers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from bytewax.connectors.kafka import KafkaSinkMessage, KafkaSourceMessage
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, TestingSource, run_main

from flows.catalog.flow import build_flow as catalog_flow
from flows.envelopes import Incoming
from flows.inventory.flow import build_flow as inventory_flow
from flows.orders.flow import OrderSaga
from flows.orders.flow import build_flow as orders_flow
from flows.orders.logic import order_line
from flows.payments.fakes import FakeGateway
from flows.payments.flow import PaymentSteps
from flows.payments.flow import build_flow as payments_flow
from flows.payments.logic import Payment
from flows.users.flow import build_flow as users_flow
from tests.support.dataflows import RUNNERS, SETTINGS, Runner, now, outputs, raw, record
from topology.envelope import Envelope, Producer, decode, encode, envelop
from topology.messages import (
    AddAddress,
    AdjustStock,
    AuthorizePayment,
    AuthorizePaymentV2,
    CancelOrder,
    CapturePayment,
    CardToken,
    ExpireOrderStep,
    Message,
    Money,
    OrderItem,
    PaymentAuthorized,
    PlaceOrder,
    PlaceOrderV2,
    PlaceOrderV3,
    ProductUpserted,
    ProfileUpdated,
    RegisterDevice,
    RegisterUser,
    ReserveStock,
    SavedMethod,
    StockRejected,
    StockReserved,
    SuspendAccount,
    UpdatePreferences,
    UpdateProfile,
    UpsertProduct,
)
from topology.messages.users import Address
from topology.topics import (
    CATALOG_COMMANDS,
    CATALOG_EVENTS,
    INVENTORY_COMMANDS,
    INVENTORY_EVENTS,
    ORDER_COMMANDS,
    ORDER_INBOX,
    PARTNER_COMMANDS,
    PAYMENT_COMMANDS,
    PAYMENT_EVENTS,
    USER_COMMANDS,
    USER_EVENTS,
)

P1_COMMANDS = PARTNER_COMMANDS.for_partner("p1")


def product(sku: str, amount: int, offset: int, owner: str | None = None, currency: str = "EUR") -> Any:
    """The catalog's event for a product, as the inventory flow reads it from the catalog's event topic."""
    upserted = ProductUpserted(
        sku=sku,
        title=sku,
        description="",
        brand="",
        category="",
        tags=[],
        price=Money(amount, currency),
        owner_partner_id=owner,
    )
    return record(CATALOG_EVENTS, sku, upserted, offset, Producer("service", "catalog"))


def types(events: list[tuple[str, Envelope]]) -> list[str]:
    return [e.type for _, e in events]


def through_inbox(runner: Runner, items: list[Any]) -> tuple[list[KafkaSinkMessage], list[KafkaSinkMessage]]:
    """The orders flow twice, as the broker would feed it: what it sent to its inbox comes back as input.

    Items on the inbox itself (the participants' answers) are held back and follow what the
    first pass forwarded there. Returns the outputs of both passes: the first forwards (and
    validates), the second runs the saga.
    """
    first: list[KafkaSinkMessage] = []
    commands = [i for i in items if i.topic != ORDER_INBOX.name]
    runner(orders_flow(TestingSource(commands), TestingSink(first), SETTINGS))
    queued = [m for m in first if m.topic == ORDER_INBOX.name] + [i for i in items if i.topic == ORDER_INBOX.name]
    inbox = [
        KafkaSourceMessage(key=m.key, value=m.value, topic=ORDER_INBOX.name, partition=0, offset=n)
        for n, m in enumerate(queued)
    ]
    second: list[KafkaSinkMessage] = []
    runner(orders_flow(TestingSource(inbox), TestingSink(second), SETTINGS))
    return first, second


@pytest.mark.parametrize("runner", RUNNERS.values(), ids=RUNNERS.keys())
def test_inventory_never_oversells_and_dead_letters_poison(runner: Runner) -> None:
    items = [product("sku-1", 500, 0), product("sku-2", 500, 0)]
    items += [record(INVENTORY_COMMANDS, "sku-1", AdjustStock(sku="sku-1", delta=3, reason="delivery"), 0)]
    items += [
        record(INVENTORY_COMMANDS, "sku-1", ReserveStock(sku="sku-1", order_id=f"o{i}", quantity=1), i + 1)
        for i in range(5)
    ]
    items += [record(INVENTORY_COMMANDS, "sku-2", ReserveStock(sku="sku-2", order_id="o9", quantity=1), 6)]
    items.append(raw(INVENTORY_COMMANDS, "sku-1", b"\x00 not json", 7))
    items.append(record(INVENTORY_COMMANDS, "sku-1", StockReserved(sku="sku-1", order_id="o1", quantity=1), 8))
    out: list[KafkaSinkMessage] = []
    runner(inventory_flow(TestingSource(items), TestingSink(out), SETTINGS))
    events, dead = outputs(out)
    published = [e for t, e in events if t == INVENTORY_EVENTS.name]
    reserved = [e.payload.order_id for e in published if e.type == "StockReserved"]
    rejected = [e.payload.order_id for e in published if e.type == "StockRejected"]
    assert sorted(reserved) == ["o0", "o1", "o2"]
    assert sorted(rejected) == ["o3", "o4", "o9"]
    levels = [e.payload for t, e in events if e.type == "StockLevelChanged"]
    assert all(level.available >= 0 for level in levels)
    assert min(level.available for level in levels if level.sku == "sku-1") == 0
    assert {t for t, e in events if e.type.startswith("Stock") and e.type != "StockLevelChanged"} == {
        INVENTORY_EVENTS.name,
        ORDER_INBOX.name,
    }
    answers = sorted((m.key, m.value) for m in out if m.topic == ORDER_INBOX.name)
    assert answers == sorted(
        (e.payload.order_id.encode(), m.value)
        for m, (t, e) in zip((m for m in out if not m.topic.endswith(".dlq")), events, strict=True)
        if t == INVENTORY_EVENTS.name and e.type in ("StockReserved", "StockRejected")
    ), "each reservation's outcome is also in the order's inbox: the same bytes, keyed by the order"
    assert sorted(d.offset for _, d in dead) == [7, 8]
    reasons = {d.offset: d.error for _, d in dead}
    assert "not a valid envelope" in reasons[7]
    assert "StockReserved does not belong on shop.inventory.commands" in reasons[8]
    assert all(msg.topic == "shop.inventory.commands.dlq" for msg, _ in dead)
    assert dead[0][0].value in (b"\x00 not json", items[8].value), "the original bytes travel untouched"


@pytest.mark.parametrize("runner", RUNNERS.values(), ids=RUNNERS.keys())
def test_orders_saga_steps_and_partner_validation(runner: Runner) -> None:
    place = PlaceOrder(
        order_id="o1",
        customer_id="u1",
        lines=[order_line("a", 2, 300), order_line("b", 1, 100)],
        payment_token="tok_visa",
    )
    items = [
        record(ORDER_COMMANDS, "o1", place, 0),
        record(ORDER_INBOX, "o1", StockReserved(sku="a", order_id="o1", quantity=2, unit_price=Money(300, "EUR")), 1),
        record(ORDER_INBOX, "o1", StockReserved(sku="b", order_id="o1", quantity=1, unit_price=Money(100, "EUR")), 2),
        record(ORDER_INBOX, "o1", PaymentAuthorized(order_id="o1", payment_id="pay_1", amount=Money(700, "EUR")), 3),
        record(P1_COMMANDS, "sku-p", AdjustStock(sku="sku-p", delta=10), 4, Producer("partner", "p1")),
    ]
    bad = msgspec.json.decode(encode(envelop(place, producer=Producer("partner", "p1"), occurred_at=now())))
    bad["payload"]["discount"] = 100
    items.append(raw(P1_COMMANDS, "o2", msgspec.json.encode(bad), 5))
    first, second = through_inbox(runner, items)
    queued = [(m.key, m.value) for m in first if m.topic == ORDER_INBOX.name]
    assert queued == [(b"o1", items[0].value)], "the order command reaches the inbox untouched, keyed by order"
    assert not [m for m in second if m.topic == ORDER_INBOX.name], "the saga's own inputs are not sent again"
    events, dead = outputs(first + second)
    by_type = {e.type: (t, e) for t, e in events}
    assert by_type["OrderPlaced"][1].payload.total == Money(700, "EUR")
    assert by_type["AuthorizePayment"][0] == PAYMENT_COMMANDS.name
    assert types(events).count("ReserveStock") == 2
    assert types(events).count("CommitStock") == 2
    assert "CapturePayment" in by_type
    forwarded = [(t, e) for t, e in events if e.type == "AdjustStock"]
    assert [t for t, _ in forwarded] == [INVENTORY_COMMANDS.name]
    assert forwarded[0][1].payload.partner_id == "p1", "the partner the topic names, for inventory to check"
    [(msg, letter)] = dead
    assert letter.topic == P1_COMMANDS.name and msg.topic == "shop.partner.commands.dlq"
    assert "unknown fields: $.payload.discount" in letter.error
    assert not any(getattr(e.payload, "order_id", None) == "o2" for _, e in events), "invalid orders never enter state"
    placed = decode(items[0].value)
    assert by_type["ReserveStock"][1].correlation_id == placed.correlation_id == placed.id
    assert by_type["ReserveStock"][1].causation_id == placed.id, "the saga's first effects are the reservations"


def test_payments_are_idempotent_and_declines_are_events() -> None:
    gateway = FakeGateway()
    authorize = AuthorizePayment(order_id="o1", amount=Money(900, "EUR"), payment_token="tok_visa")
    items = [
        record(PAYMENT_COMMANDS, "o1", authorize, 0),
        record(PAYMENT_COMMANDS, "o1", authorize, 1),  # a duplicate command
        record(
            PAYMENT_COMMANDS,
            "o2",
            AuthorizePayment(order_id="o2", amount=Money(5, "EUR"), payment_token="tok_decline"),
            2,
        ),
        record(PAYMENT_COMMANDS, "o1", CapturePayment(order_id="o1"), 3),
    ]
    out: list[KafkaSinkMessage] = []
    run_main(payments_flow(TestingSource(items), TestingSink(out), SETTINGS, gateway=gateway))
    events, dead = outputs(out)
    assert dead == []
    published = [(t, e) for t, e in events if t == PAYMENT_EVENTS.name]
    assert types(published) == ["PaymentAuthorized", "PaymentAuthorized", "PaymentDeclined", "PaymentCaptured"]
    assert len(gateway.payments) == 1, "one card charge for two identical commands"
    assert published[0][1].payload.payment_id == published[1][1].payload.payment_id
    answers = [(m.key, m.value) for m in out if m.topic == ORDER_INBOX.name]
    assert answers == [(m.key, m.value) for m in out if m.topic == PAYMENT_EVENTS.name][:3], (
        "an authorization's outcome is also the order's answer in its inbox, the same bytes; a capture is not"
    )


@pytest.mark.parametrize("runner", RUNNERS.values(), ids=RUNNERS.keys())
def test_an_order_is_authorized_with_the_saved_method_or_the_token_it_was_placed_with(runner: Runner) -> None:
    saved = SavedMethod(payment_method_id="pm_1", gateway_customer_id="cus_1")
    items: list[Any] = []
    for n, (order_id, payment) in enumerate((("o1", saved), ("o2", CardToken("tok_visa")))):
        place = PlaceOrderV3(order_id=order_id, customer_id="u1", lines=[OrderItem("a", 1)], payment=payment)
        reserved = StockReserved(sku="a", order_id=order_id, quantity=1, unit_price=Money(300, "EUR"))
        items += [record(ORDER_COMMANDS, order_id, place, n), record(ORDER_INBOX, order_id, reserved, n)]
    _, second = through_inbox(runner, items)
    events, dead = outputs(second)
    assert dead == []
    asked = {e.payload.order_id: e for t, e in events if t == PAYMENT_COMMANDS.name and e.type == "AuthorizePayment"}
    assert asked["o1"].payload == AuthorizePaymentV2(order_id="o1", amount=Money(300, "EUR"), payment=saved)
    assert asked["o1"].version == 2
    assert asked["o2"].payload == AuthorizePayment(order_id="o2", amount=Money(300, "EUR"), payment_token="tok_visa")
    assert asked["o2"].version == 1, "a token's authorization stays version 1, which every payments flow reads"


def test_payments_charge_a_saved_method_with_its_customer_only() -> None:
    gateway = FakeGateway()
    method = gateway.save_card("cus_ann", "tok_visa")
    declined_card = gateway.save_card("cus_ann", "tok_decline")
    total = Money(900, "EUR")

    def authorize(order_id: str, source: SavedMethod | CardToken) -> AuthorizePaymentV2:
        return AuthorizePaymentV2(order_id=order_id, amount=total, payment=source)

    commands = [
        authorize("o1", SavedMethod(payment_method_id=method, gateway_customer_id="cus_ann")),
        authorize("o2", SavedMethod(payment_method_id=method, gateway_customer_id="cus_bob")),
        authorize("o3", SavedMethod(payment_method_id=declined_card, gateway_customer_id="cus_ann")),
        authorize("o4", CardToken("tok_visa")),
    ]
    items = [record(PAYMENT_COMMANDS, c.order_id, c, n) for n, c in enumerate(commands)]
    items.append(record(PAYMENT_COMMANDS, "o1", commands[0], len(items)))  # a duplicate
    out: list[KafkaSinkMessage] = []
    run_main(payments_flow(TestingSource(items), TestingSink(out), SETTINGS, gateway=gateway))
    events, dead = outputs(out)
    assert dead == []
    published = [e.payload for t, e in events if t == PAYMENT_EVENTS.name]
    outcomes = sorted((p.order_id, type(p).__name__, getattr(p, "reason", "")) for p in published)
    assert outcomes == [
        ("o1", "PaymentAuthorized", ""),
        ("o1", "PaymentAuthorized", ""),
        ("o2", "PaymentDeclined", "payment_method_not_attached"),
        ("o3", "PaymentDeclined", "card_declined"),
        ("o4", "PaymentAuthorized", ""),
    ]
    assert len(gateway.payments) == 2, "another customer's charge was never made, the duplicate made none"


@pytest.mark.parametrize("runner", RUNNERS.values(), ids=RUNNERS.keys())
def test_events_carry_their_entity_version_and_commands_none(runner: Runner) -> None:
    place = PlaceOrder(order_id="o1", customer_id="u1", lines=[order_line("a", 1, 300)], payment_token="tok_visa")
    order_items = [
        record(ORDER_COMMANDS, "o1", place, 0),
        record(ORDER_INBOX, "o1", StockReserved(sku="a", order_id="o1", quantity=1, unit_price=Money(300, "EUR")), 1),
        record(ORDER_INBOX, "o1", PaymentAuthorized(order_id="o1", payment_id="p", amount=Money(300, "EUR")), 2),
    ]
    stock_items = [record(INVENTORY_COMMANDS, s, AdjustStock(sku=s, delta=5), i) for i, s in enumerate("xyxxy")]
    for build, items in ((orders_flow, order_items), (inventory_flow, stock_items)):
        out: list[KafkaSinkMessage] = []
        if build is orders_flow:
            out = through_inbox(runner, items)[1]
        else:
            runner(build(TestingSource(items), TestingSink(out), SETTINGS))
        events, _ = outputs(out)
        seqs: dict[str, list[int]] = {}
        for _, envelope in events:
            if envelope.payload.KIND == "command":
                assert envelope.seq is None, envelope.type
            else:
                assert envelope.seq is not None, envelope.type
                entity = envelope.payload.order_id if build is orders_flow else envelope.payload.sku  # type: ignore[attr-defined]
                seqs.setdefault(entity, []).append(envelope.seq)
        assert seqs, "some events were emitted"
        for entity, numbers in seqs.items():
            assert numbers == list(range(1, len(numbers) + 1)), (entity, numbers)


@pytest.mark.parametrize("runner", RUNNERS.values(), ids=RUNNERS.keys())
def test_users_register_once_and_update_with_their_version(runner: Runner) -> None:
    register = record(USER_COMMANDS, "u1", RegisterUser(user_id="u1", email="a@example.com", name="Ann"), 0)
    items = [
        register,
        register,  # the same command again (a retried produce): nothing new
        record(USER_COMMANDS, "u1", RegisterUser(user_id="u1", email="b@example.com", name="Bob"), 1),
        record(USER_COMMANDS, "u1", UpdateProfile(user_id="u1", phone="+4930123456"), 2),
        record(USER_COMMANDS, "u1", UpdateProfile(user_id="u1", phone="+4930123456"), 3),  # changes nothing
        record(USER_COMMANDS, "u2", UpdateProfile(user_id="u2", name="Nobody"), 4),  # never registered
        raw(USER_COMMANDS, "u3", b"{}", 5),
    ]
    out: list[KafkaSinkMessage] = []
    runner(users_flow(TestingSource(items), TestingSink(out), SETTINGS))
    events, dead = outputs(out)
    assert [(e.type, e.seq) for _, e in events] == [("UserRegistered", 1), ("ProfileUpdated", 2)]
    assert events[1][1].payload == ProfileUpdated(user_id="u1", name="Ann", phone="+4930123456")
    assert {t for t, _ in events} == {USER_EVENTS.name}
    assert [d.offset for _, d in dead] == [5]


@pytest.mark.parametrize("runner", RUNNERS.values(), ids=RUNNERS.keys())
def test_users_keep_preferences_addresses_devices_and_status_and_refuse_an_address_of_a_wrong_shape(
    runner: Runner,
) -> None:
    home = Address(name="Ann", line1="1 Main St", city="Berlin", postal_code="10115", country="DE")
    commands = [
        RegisterUser(user_id="u1", email="a@example.com", name="Ann"),
        UpdatePreferences(user_id="u1", locale="de-DE", marketing_consent=True),
        AddAddress(user_id="u1", address_id="a1", address=home),
        AddAddress(user_id="u1", address_id="a2", address=msgspec.structs.replace(home, postal_code="1")),
        RegisterDevice(user_id="u1", device_id="d1", platform="android", token="fcm-token"),
        SuspendAccount(user_id="u1", reason="fraud", by="sue", os_user="root"),
        UpdatePreferences(user_id="u1", locale="fr-FR"),  # suspended: not taken
        RegisterUser(user_id="u2", email="b@example.com", name="Bob"),
    ]
    items = [record(USER_COMMANDS, c.user_id, c, n) for n, c in enumerate(commands)]
    out: list[KafkaSinkMessage] = []
    runner(users_flow(TestingSource(items), TestingSink(out), SETTINGS))
    events, dead = outputs(out)
    of_u1 = [(e.type, e.seq) for _, e in events if e.payload.user_id == "u1"]
    assert of_u1 == [
        ("UserRegistered", 1),
        ("PreferencesUpdated", 2),
        ("AddressAdded", 3),
        ("DeviceRegistered", 4),
        ("AccountSuspended", 5),
    ]
    assert [(letter.offset, "postal_code" in letter.error) for _, letter in dead] == [(3, True)]
    consent = next(e for _, e in events if e.type == "PreferencesUpdated").payload.preferences.marketing_consent_at
    assert consent == decode(items[1].value).occurred_at, "the opt-in is dated when it was sent"
    assert [e.type for _, e in events if e.payload.user_id == "u2"] == ["UserRegistered"]


@pytest.mark.parametrize("runner", RUNNERS.values(), ids=RUNNERS.keys())
def test_catalog_emits_a_product_only_when_it_changes(runner: Runner) -> None:
    product = UpsertProduct(sku="s1", title="Mug", price=Money(900, "EUR"), owner_partner_id="p1")
    items = [
        record(CATALOG_COMMANDS, "s1", product, 0),
        record(CATALOG_COMMANDS, "s1", product, 1),
        record(
            CATALOG_COMMANDS, "s1", msgspec.structs.replace(product, price=Money(800, "EUR"), owner_partner_id=None), 2
        ),
        record(CATALOG_COMMANDS, "s2", UpsertProduct(sku="s2", title="Lamp", price=Money(5, "EUR")), 3),
    ]
    out: list[KafkaSinkMessage] = []
    runner(catalog_flow(TestingSource(items), TestingSink(out), SETTINGS))
    events, dead = outputs(out)
    assert dead == []
    by_sku = sorted((e.payload.sku, e.seq, e.payload.price.amount, e.payload.owner_partner_id) for _, e in events)
    assert by_sku == [("s1", 1, 900, "p1"), ("s1", 2, 800, "p1"), ("s2", 1, 5, None)]


def test_emitted_ids_are_stable_across_runs() -> None:
    items = [
        product("s", 100, 0),
        record(INVENTORY_COMMANDS, "s", AdjustStock(sku="s", delta=1), 0),
        record(INVENTORY_COMMANDS, "s", ReserveStock(sku="s", order_id="o", quantity=1), 1),
    ]
    first: list[KafkaSinkMessage] = []
    second: list[KafkaSinkMessage] = []
    run_main(inventory_flow(TestingSource(items), TestingSink(first), SETTINGS))
    run_main(inventory_flow(TestingSource(items), TestingSink(second), SETTINGS))
    assert [m.value for m in first] == [m.value for m in second]


def test_recovery_resumes_after_an_abort_without_overselling(tmp_path: Path) -> None:
    init_db_dir(tmp_path, 1)
    recovery = RecoveryConfig(str(tmp_path))
    items: list[Any] = [product("s", 100, 0), record(INVENTORY_COMMANDS, "s", AdjustStock(sku="s", delta=4), 0)]
    for i in range(10):
        items.append(record(INVENTORY_COMMANDS, "s", ReserveStock(sku="s", order_id=f"o{i}", quantity=1), i + 1))
        if i == 5:
            items.append(TestingSource.ABORT())
    out: list[KafkaSinkMessage] = []
    source = TestingSource(items)
    run_main(inventory_flow(source, TestingSink(out), SETTINGS), epoch_interval=timedelta(0), recovery_config=recovery)
    before = len({decode(m.value).id for m in out})  # an answer's copy in the inbox has the event's id
    assert before > 0
    run_main(inventory_flow(source, TestingSink(out), SETTINGS), epoch_interval=timedelta(0), recovery_config=recovery)
    events, _ = outputs(out)
    distinct = {e.id: e for _, e in events}
    reserved = sorted({e.payload.order_id for e in distinct.values() if e.type == "StockReserved"})
    rejected = sorted({e.payload.order_id for e in distinct.values() if e.type == "StockRejected"})
    assert reserved == ["o0", "o1", "o2", "o3"]
    assert rejected == [f"o{i}" for i in range(4, 10)]
    assert before < len(distinct), "the first run stopped at the abort"
    encodings: dict[str, set[bytes]] = {}
    for msg in out:
        encodings.setdefault(decode(msg.value).id, set()).add(msg.value)
    assert all(len(values) == 1 for values in encodings.values()), "a replayed message is byte-identical"


def test_a_payment_call_in_flight_at_a_snapshot_is_made_again_under_its_key_on_resume() -> None:
    gateway = FakeGateway()
    authorize = AuthorizePayment(order_id="o7", amount=Money(900, "EUR"), payment_token="tok_visa")
    command = decode(record(PAYMENT_COMMANDS, "o7", authorize, 0).value)
    incoming = Incoming(command, PAYMENT_COMMANDS.name, 0, 0)
    steps = PaymentSteps(None, lambda: gateway, "")
    before = now()
    outs, _ = steps.on_item(incoming)
    assert outs == [[]], "the call is out: no event before its answer"
    due = steps.notify_at()
    assert due is not None and due < before, "due before the activation began, so Bytewax wakes the key at once"
    snapshot = steps.snapshot()
    assert snapshot[2] is not None and snapshot[2][0].key == "o7:authorize"

    first = [decode(o.value) for o in steps.on_notify()[0][0] if o.topic == PAYMENT_EVENTS.name]
    resumed = PaymentSteps(snapshot, lambda: gateway, "")  # a restart from the snapshot taken mid-call
    again = [decode(o.value) for o in resumed.on_eof()[0][0] if o.topic == PAYMENT_EVENTS.name]
    assert [e.type for e in again] == ["PaymentAuthorized"]
    assert again == first, "the same key gets the provider's first answer: same payment, same event id"
    assert len(gateway.payments) == 1, "one charge"


def test_payment_snapshots_from_before_calls_in_flight_still_resume() -> None:
    authorize = AuthorizePayment(order_id="o8", amount=Money(900, "EUR"), payment_token="tok_visa")
    command = decode(record(PAYMENT_COMMANDS, "o8", authorize, 0).value)
    old = (Payment("o8", status="authorized", payment_id="pay_1", amount=Money(900, "EUR")), 1)
    steps = PaymentSteps(old, FakeGateway, "")
    [[out, _copy]], _ = steps.on_item(Incoming(command, PAYMENT_COMMANDS.name, 0, 0))
    event = decode(out.value)
    assert event.type == "PaymentAuthorized" and event.seq == 2


def test_an_order_that_moved_on_clears_its_old_deadline_from_the_schedule_at_once() -> None:
    """Bytewax keeps a key's last notify time until it fires; a settled order must not leave its 30 s deadline."""
    saga = OrderSaga(None, "")
    place = PlaceOrder(order_id="o9", customer_id="u1", lines=[order_line("a", 1, 300)], payment_token="tok_visa")
    steps = [
        record(ORDER_COMMANDS, "o9", place, 0),
        record(ORDER_INBOX, "o9", StockReserved(sku="a", order_id="o9", quantity=1, unit_price=Money(300, "EUR")), 1),
        record(ORDER_INBOX, "o9", PaymentAuthorized(order_id="o9", payment_id="pay_9", amount=Money(300, "EUR")), 2),
    ]
    dues = []
    for n, step in enumerate(steps):
        saga.on_item(Incoming(decode(step.value), step.topic, 0, n))
        dues.append(saga.notify_at())
    assert dues[0] is not None and dues[0] > now() + timedelta(seconds=20), "waiting for stock: its deadline"
    assert dues[1] is not None and dues[1] > now() + timedelta(seconds=20), "authorizing: the payment deadline"
    assert saga.order is not None and saga.order.status == "confirmed"
    assert dues[2] is not None and dues[2] <= now(), "confirmed: the stale payment deadline is made due now"
    assert saga.on_notify() == ([], False), "the wake-up changes nothing"
    assert saga.notify_at() is None, "and then nothing is scheduled"
    resumed = OrderSaga(saga.snapshot(), "")
    assert resumed.notify_at() is None, "a resumed settled order schedules nothing"


def test_a_passed_deadline_goes_through_the_inbox_and_cancels_once() -> None:
    """The expiry is a message in the order's log: sent once per deadline, same id after a restart, acted on once."""
    place = PlaceOrder(order_id="o5", customer_id="u1", lines=[order_line("a", 1, 300)], payment_token="tok_visa")
    placed = envelop(place, producer=Producer("user", "u1"), occurred_at=now() - timedelta(seconds=31))
    saga = OrderSaga(None, "")
    saga.on_item(Incoming(placed, ORDER_INBOX.name, 0, 0))
    due = saga.notify_at()
    assert due is not None and due < now(), "the reservation deadline has passed"
    snapshot = saga.snapshot()
    [[sent]], _ = saga.on_notify()
    assert sent.topic == ORDER_INBOX.name and sent.key == b"o5"
    expiry = decode(sent.value)
    assert expiry.type == "ExpireOrderStep" and expiry.payload.deadline == due
    assert saga.order is not None and saga.order.status == "reserving", "nothing is decided until it is read back"
    assert saga.notify_at() is None and saga.on_notify() == ([], False), "one expiry per deadline"

    restarted = OrderSaga(snapshot, "")
    restarted.notify_at()
    [[again]], _ = restarted.on_notify()
    assert decode(again.value).id == expiry.id, "a restart sends the same expiry again"

    [outs], _ = saga.on_item(Incoming(expiry, ORDER_INBOX.name, 0, 1))
    cancelled = [decode(o.value) for o in outs]
    assert [e.type for e in cancelled if e.type == "OrderCancelled"] == ["OrderCancelled"]
    assert "stock reservation timed out" in cancelled[0].payload.reason  # type: ignore[attr-defined]
    assert saga.on_item(Incoming(decode(again.value), ORDER_INBOX.name, 0, 2)) == ([[]], False), "the copy: nothing"


def test_an_expiry_on_any_other_topic_is_dead_lettered() -> None:
    expire = ExpireOrderStep(order_id="o6", deadline=now())
    out: list[KafkaSinkMessage] = []
    run_main(orders_flow(TestingSource([record(ORDER_COMMANDS, "o6", expire, 0)]), TestingSink(out), SETTINGS))
    events, dead = outputs(out)
    assert events == []
    assert ["ExpireOrderStep does not belong on shop.orders.commands" in d.error for _, d in dead] == [True]


@pytest.mark.parametrize("runner", RUNNERS.values(), ids=RUNNERS.keys())
def test_a_replay_long_after_the_deadlines_decides_as_the_first_run_did(runner: Runner) -> None:
    """A replay meets old messages whose deadlines the wall clock has passed: the log decides, not the clock."""
    place = PlaceOrder(order_id="o4", customer_id="u1", lines=[order_line("a", 1, 300)], payment_token="tok_visa")
    then = now() - timedelta(seconds=31)
    answers: list[Message] = [
        place,
        StockReserved(sku="a", order_id="o4", quantity=1, unit_price=Money(300, "EUR")),
        PaymentAuthorized(order_id="o4", payment_id="pay_4", amount=Money(300, "EUR")),
    ]
    items = [
        raw(
            ORDER_INBOX,
            "o4",
            encode(envelop(m, producer=Producer("user", "u1"), occurred_at=then + timedelta(milliseconds=n))),
            n,
        )
        for n, m in enumerate(answers)
    ]
    runs = []
    for _ in range(2):  # the first run, and a replay of the same log
        out: list[KafkaSinkMessage] = []
        runner(orders_flow(TestingSource(items, batch_size=1), TestingSink(out), SETTINGS))
        runs.append(sorted(m.value for m in out if m.topic != ORDER_INBOX.name))
    assert runs[0] == runs[1], "the replay sends byte for byte what the first run sent"
    decided = [decode(v).type for v in runs[0]]
    assert "OrderConfirmed" in decided and "OrderCancelled" not in decided


ACME = PARTNER_COMMANDS.for_partner("acme")
PARTNER_DLQ = "shop.partner.commands.dlq"


@pytest.mark.parametrize("runner", RUNNERS.values(), ids=RUNNERS.keys())
def test_a_partner_acts_only_as_the_partner_its_topic_names(runner: Runner) -> None:
    acme, bob = Producer("partner", "acme"), Producer("partner", "bob")
    own = PlaceOrderV2(
        order_id="partner:acme:p1", customer_id="partner:acme", lines=[OrderItem("a", 1)], payment_token="tok_visa"
    )
    as_customer = msgspec.structs.replace(own, order_id="partner:acme:p2", customer_id="u-9")
    foreign_id = msgspec.structs.replace(own, order_id="o_0123")  # an id in no partner's range
    priced = PlaceOrder(order_id="p3", customer_id="partner:acme", lines=[order_line("a", 1, 1)], payment_token="t")
    with_price = msgspec.json.decode(encode(envelop(own, producer=acme, occurred_at=now())))
    with_price["payload"]["order_id"] = "p4"
    with_price["payload"]["lines"][0]["unit_price"] = {"amount": 1, "currency": "EUR"}
    items = [
        record(ACME, "p1", own, 0, acme),
        record(ACME, "p2", as_customer, 1, acme),
        record(ACME, "p3", priced, 2, acme),
        raw(ACME, "p4", msgspec.json.encode(with_price), 3),
        record(ACME, "s1", AdjustStock(sku="s1", delta=5), 4, bob),  # bob's producer on acme's topic: forged
        record(ACME, "s1", AdjustStock(sku="s1", delta=5, partner_id="bob"), 5, acme),
        record(ACME, "s1", UpsertProduct(sku="s1", title="Mug", price=Money(900, "EUR")), 6, acme),
        record(ACME, "s1", AdjustStock(sku="s1", delta=5), 7, acme),
        record(ACME, "p1", CancelOrder(order_id="p1"), 8, acme),
        record(ACME, "o_0123", foreign_id, 9, acme),
    ]
    out: list[KafkaSinkMessage] = []
    runner(orders_flow(TestingSource(items), TestingSink(out), SETTINGS))
    events, dead = outputs(out)
    assert [(m.key, m.value) for m in out if m.topic == ORDER_INBOX.name] == [(b"partner:acme:p1", items[0].value)]
    passed = {e.type: e.payload for t, e in events if t in (INVENTORY_COMMANDS.name, CATALOG_COMMANDS.name)}
    assert passed == {
        "UpsertProduct": msgspec.structs.replace(items_payload(items[6]), owner_partner_id="acme"),
        "AdjustStock": AdjustStock(sku="s1", delta=5, partner_id="acme"),
    }, "a product and a stock command carry the partner the topic names"
    assert {msg.topic for msg, _ in dead} == {PARTNER_DLQ}
    assert {letter.topic for _, letter in dead} == {ACME.name}
    reasons = {letter.offset: letter.error for _, letter in dead}
    assert sorted(reasons) == [1, 2, 3, 4, 5, 8, 9]
    assert "orders only as its buyer account partner:acme, not as u-9" in reasons[1]
    assert "PlaceOrder v1 carries unit prices" in reasons[2]
    assert "unknown fields: $.payload.lines[0].unit_price" in reasons[3]
    assert "producer (partner bob) is not partner acme" in reasons[4]
    assert "partner_id bob is not partner acme" in reasons[5]
    assert "CancelOrder does not belong on shop.partner.acme.commands" in reasons[8]
    assert "order ids begin with partner:acme: (o_0123 does not)" in reasons[9]


def items_payload(item: KafkaSourceMessage) -> Any:
    return decode(item.value).payload


@pytest.mark.parametrize("runner", RUNNERS.values(), ids=RUNNERS.keys())
def test_the_first_partner_to_upsert_a_sku_owns_it(runner: Runner) -> None:
    mug = UpsertProduct(sku="s1", title="Mug", price=Money(900, "EUR"), owner_partner_id="acme")
    items = [
        record(CATALOG_COMMANDS, "s1", mug, 0),
        record(CATALOG_COMMANDS, "s1", msgspec.structs.replace(mug, price=Money(1, "EUR"), owner_partner_id="bob"), 1),
        record(CATALOG_COMMANDS, "s1", msgspec.structs.replace(mug, price=Money(950, "EUR"), owner_partner_id=None), 2),
        record(CATALOG_COMMANDS, "s2", UpsertProduct(sku="s2", title="Lamp", price=Money(5, "EUR")), 3),
        record(
            CATALOG_COMMANDS,
            "s2",
            UpsertProduct(sku="s2", title="Lamp", price=Money(6, "EUR"), owner_partner_id="bob"),
            4,
        ),
    ]
    out: list[KafkaSinkMessage] = []
    runner(catalog_flow(TestingSource(items), TestingSink(out), SETTINGS))
    events, dead = outputs(out)
    by_sku = sorted((e.payload.sku, e.seq, e.payload.price.amount, e.payload.owner_partner_id) for _, e in events)
    assert by_sku == [("s1", 1, 900, "acme"), ("s1", 2, 950, "acme"), ("s2", 1, 5, None), ("s2", 2, 6, "bob")], (
        "bob's upsert of acme's SKU changed nothing; an admin's keeps the owner; a SKU no one owns goes to a partner"
    )
    [(msg, letter)] = dead
    assert msg.topic == "shop.catalog.commands.dlq" and letter.offset == 1 and msg.value == items[1].value
    assert letter.error == "SKU s1 belongs to partner acme: partner bob may not change it"


@pytest.mark.parametrize("runner", RUNNERS.values(), ids=RUNNERS.keys())
def test_inventory_keeps_each_skus_owner_and_price_from_the_catalog(runner: Runner) -> None:
    items = [
        product("s1", 100, 0, owner="acme"),
        record(INVENTORY_COMMANDS, "s1", AdjustStock(sku="s1", delta=5, partner_id="acme"), 1),
        record(INVENTORY_COMMANDS, "s1", AdjustStock(sku="s1", delta=7, partner_id="bob"), 2),
        record(INVENTORY_COMMANDS, "s9", AdjustStock(sku="s9", delta=7, partner_id="acme"), 3),
        record(INVENTORY_COMMANDS, "s1", ReserveStock(sku="s1", order_id="o1", quantity=1), 4),
        product("s1", 200, 5, owner="acme"),  # the price changes between two reservations
        record(INVENTORY_COMMANDS, "s1", ReserveStock(sku="s1", order_id="o2", quantity=1), 6),
        record(INVENTORY_COMMANDS, "s1", ReserveStock(sku="s1", order_id="o1", quantity=1), 7),  # a repeat
        record(INVENTORY_COMMANDS, "plain", AdjustStock(sku="plain", delta=3), 8),  # an admin's: allowed
        record(INVENTORY_COMMANDS, "plain", ReserveStock(sku="plain", order_id="o3", quantity=1), 9),
    ]
    out: list[KafkaSinkMessage] = []
    runner(inventory_flow(TestingSource(items), TestingSink(out), SETTINGS))
    events, dead = outputs(out)
    published = [e.payload for t, e in events if t == INVENTORY_EVENTS.name]
    reserved = [(p.order_id, p.unit_price) for p in published if isinstance(p, StockReserved)]
    assert reserved == [("o1", Money(100, "EUR")), ("o2", Money(200, "EUR")), ("o1", Money(100, "EUR"))], (
        "each reservation at the catalog's price when it was made, and answered again at it"
    )
    [rejected] = [p for p in published if isinstance(p, StockRejected)]
    assert (rejected.order_id, rejected.reason) == ("o3", "plain has no catalog price")
    levels = {e.payload.sku: e.payload for t, e in events if e.type == "StockLevelChanged"}
    assert (levels["s1"].total, levels["s1"].reserved) == (5, 2), "bob's adjustment changed nothing"
    assert "s9" not in levels
    reasons = sorted((letter.offset, letter.error) for _, letter in dead)
    assert reasons == [
        (2, "SKU s1 belongs to partner acme: partner bob may not adjust its stock"),
        (3, "SKU s9 belongs to no partner (or it is not in the catalog yet): partner acme may not adjust its stock"),
    ]
    assert {msg.topic for msg, _ in dead} == {"shop.inventory.commands.dlq"}
