"""The merge rule of the read models, as properties over real event histories (pure, no stack)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.outcome import Refusal
from flows.users import logic
from sinks.projections import by_table, fold, merge, read_model_rows
from tests.support.history import HISTORY_TAG, history, shuffled_within_keys
from topology.envelope import Envelope, Producer, envelop
from topology.messages import (
    AddAddress,
    ChangeAddress,
    RegisterDevice,
    RegisterUser,
    ReinstateAccount,
    RemoveAddress,
    SuspendAccount,
    UnregisterDevice,
    UpdatePreferences,
    UpdateProfile,
)
from topology.messages.users import Address, Preferences, QuietHours, SavedAddress
from topology.stores import (
    POSTGRES_TABLES,
    USER_ADDRESSES,
    USER_DEVICES,
    USER_PREFERENCES,
    USER_STATUS,
    USERS,
    Row,
    Table,
)

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
    filled = [(t, [r for tt, r in ROWS if tt is t]) for t in POSTGRES_TABLES]
    table, rows = data.draw(st.sampled_from([(t, rows) for t, rows in filled if rows]))
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


LOCALES = ["en-GB", "de-DE"]
QUIET = QuietHours(start="22:00", end="07:00", time_zone="UTC")


def account_events(seed: int) -> list[Envelope]:
    """Two users' account events as the users flow emits them for random commands, each user's in seq order."""
    rng = random.Random(seed)
    home = Address(name="Ann", line1="1 Main St", city="Berlin", postal_code="10115", country="DE")
    users: dict[str, logic.User | None] = {"u1": None, "u2": None}
    seqs = dict.fromkeys(users, 0)
    out: list[Envelope] = []
    at = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    by = {"by": "sue", "os_user": "root"}
    for n in range(80):
        user = rng.choice(sorted(users))
        a, d = f"a{rng.randint(0, 3)}", f"d{rng.randint(0, 3)}"
        command = rng.choice(
            [
                UpdatePreferences(
                    user_id=user, locale=rng.choice(["en-GB", "de-DE"]), marketing_consent=rng.random() < 0.5
                ),
                UpdatePreferences(user_id=user, quiet_hours=rng.choice([None, QUIET])),
                AddAddress(user_id=user, address_id=a, address=home, make_default=rng.random() < 0.3),
                ChangeAddress(user_id=user, address_id=a, address=msgspec.structs.replace(home, city=f"C{n}")),
                RemoveAddress(user_id=user, address_id=a),
                RegisterDevice(user_id=user, device_id=d, platform="web", token=f"t{n}"),
                UnregisterDevice(user_id=user, device_id=d),
                SuspendAccount(user_id=user, reason="why", **by),
                ReinstateAccount(user_id=user, **by),
                UpdateProfile(user_id=user, name=f"N{n}"),
            ]
            if users[user] is not None
            else [RegisterUser(user_id=user, email=f"{user}@example.com", name=user)]
        )
        users[user], sends = logic.handle(users[user], command, f"c{n}", at + timedelta(seconds=n))
        assert not isinstance(sends, Refusal)
        for send in sends:
            seqs[user] += 1
            envelope = envelop(
                send.message, producer=Producer("service", "users"), occurred_at=at + timedelta(seconds=n)
            )
            out.append(msgspec.structs.replace(envelope, seq=seqs[user]))
    return out


ACCOUNT = account_events(seed=11)
ACCOUNT_TABLES = (USERS, USER_PREFERENCES, USER_ADDRESSES, USER_DEVICES, USER_STATUS)


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False))
def test_a_users_account_folds_the_same_in_any_order_and_each_part_is_its_newest_events(rng: object) -> None:
    reordered = list(ACCOUNT)
    rng.shuffle(reordered)  # type: ignore[attr-defined]
    repeated = reordered + [e for e in ACCOUNT if rng.random() < 0.3]  # type: ignore[attr-defined]
    rows = [row for e in repeated for row in read_model_rows(e)]
    in_order = state([row for e in ACCOUNT for row in read_model_rows(e)])
    assert state(rows) == in_order
    for table in ACCOUNT_TABLES:
        for user in ("u1", "u2"):
            filling = [e for e in ACCOUNT if e.payload.user_id == user and isinstance(e.payload, table.filled_by)]
            assert filling, (table.name, user)
            assert in_order[table.name][(user,)]["version"] == filling[-1].seq, "the newest event filling it"


def test_the_account_parts_are_json_documents_of_their_messages_without_device_tokens() -> None:
    folded = state([row for e in ACCOUNT for row in read_model_rows(e)])
    for (user,), row in folded["user_addresses"].items():
        addresses = msgspec.json.decode(row["addresses"], type=list[SavedAddress])
        assert sum(a.default for a in addresses) == (1 if addresses else 0), user
    for row in folded["user_preferences"].values():
        assert isinstance(msgspec.json.decode(row["preferences"], type=Preferences), Preferences)
    for row in folded["user_devices"].values():
        assert all(set(d) == {"device_id", "platform", "registered_at"} for d in msgspec.json.decode(row["devices"]))
    assert {row["status"] for row in folded["user_status"].values()} <= {"active", "suspended"}
