"""Encoding and decoding in one place: round trips, and every way bytes can be bad."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from topology.envelope import Envelope, Producer, decode, encode, envelop
from topology.exceptions import DecodeError, UnknownMessageType
from topology.messages import ALL_MESSAGES, REGISTRY, Money, OrderLine, OrderPlaced, PlaceOrder

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TRACE = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
TOKEN = "tok_visa"
USER = Producer("user", "u-1")


def place_order(quantity: int = 2) -> PlaceOrder:
    line = OrderLine(sku="sku-1", quantity=quantity, unit_price=Money(1999, "EUR"))
    return PlaceOrder(order_id="o-1", customer_id="u-1", lines=[line], payment_token=TOKEN)


def test_every_message_type_is_registered_once() -> None:
    assert len(REGISTRY) == len(ALL_MESSAGES)
    commands = [m for m in ALL_MESSAGES if m.KIND == "command"]
    events = [m for m in ALL_MESSAGES if m.KIND == "event"]
    assert commands
    assert events
    assert all(m.TYPE.endswith(("ed", "Sent", "Failed")) or m.TYPE.endswith("Changed") for m in events)


def test_round_trip_keeps_everything() -> None:
    envelope = envelop(
        place_order(), producer=USER, occurred_at=NOW, traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    )
    assert decode(encode(envelope)) == envelope


def test_caused_message_inherits_correlation_and_trace() -> None:
    cause = envelop(
        place_order(), producer=USER, occurred_at=NOW, traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    )
    total = Money(3998, "EUR")
    effect = envelop(
        OrderPlaced(order_id="o-1", customer_id="u-1", lines=cause.payload.lines, total=total),  # type: ignore[attr-defined]
        producer=Producer("service", "orders"),
        occurred_at=NOW,
        causation=cause,
    )
    assert effect.correlation_id == cause.id
    assert effect.causation_id == cause.id
    assert effect.traceparent == cause.traceparent


def test_occurred_at_is_normalised_to_utc() -> None:
    local = datetime(2026, 11, 25, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    envelope = envelop(place_order(), producer=USER, occurred_at=local)
    assert envelope.occurred_at.utcoffset() == timedelta(0)
    assert envelope.occurred_at == local


def test_naive_datetimes_are_refused() -> None:
    data = encode(envelop(place_order(), producer=USER, occurred_at=NOW)).replace(b'Z"', b'"')
    with pytest.raises(DecodeError, match="not a valid envelope"):
        decode(data)
    with pytest.raises(ValueError, match="timezone-aware"):
        naive = datetime(2026, 1, 1)  # noqa: DTZ001 - the point of the test
        Envelope(
            id="x",
            type="PlaceOrder",
            version=1,
            occurred_at=naive,
            correlation_id="x",
            producer=USER,
            payload=place_order(),
        )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (None, "empty record"),
        (b"", "not a valid envelope"),
        (b"\xff\xfe not utf-8", "not a valid envelope"),
        (b"[1, 2, 3]", "not a valid envelope"),
        (b'{"id": "x"}', "not a valid envelope"),
        (b"{" * 10_000, "not a valid envelope"),
    ],
)
def test_garbage_is_a_decode_error_with_a_reason(data: bytes | None, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode(data)


def _mutate(envelope_bytes: bytes, **changes: object) -> bytes:
    raw = msgspec.json.decode(envelope_bytes)
    raw.update(changes)
    return msgspec.json.encode(raw)


def test_unknown_type_and_version() -> None:
    good = encode(envelop(place_order(), producer=USER, occurred_at=NOW))
    with pytest.raises(UnknownMessageType, match="'ShipToMars' version 1"):
        decode(_mutate(good, type="ShipToMars"))
    with pytest.raises(UnknownMessageType, match="version 9"):
        decode(_mutate(good, version=9))


def test_invalid_payload_names_the_field() -> None:
    good = encode(envelop(place_order(), producer=USER, occurred_at=NOW))
    raw = msgspec.json.decode(good)
    raw["payload"]["lines"][0]["unit_price"]["amount"] = 19.99
    with pytest.raises(DecodeError, match=r"\$\.lines\[0\]\.unit_price\.amount"):
        decode(msgspec.json.encode(raw))


def test_unknown_fields_are_ignored_by_readers_and_refused_at_the_edge() -> None:
    envelope = envelop(place_order(), producer=USER, occurred_at=NOW)
    raw = msgspec.json.decode(encode(envelope))
    raw["payload"]["coupon"] = "FREE"
    data = msgspec.json.encode(raw)
    assert decode(data) == envelope
    with pytest.raises(DecodeError, match=r"\$\.payload\.coupon"):
        decode(data, strict=True)


@given(quantity=st.integers(min_value=1, max_value=10_000), amount=st.integers(min_value=0, max_value=10**12))
def test_valid_values_round_trip(quantity: int, amount: int) -> None:
    line = OrderLine(sku="s", quantity=quantity, unit_price=Money(amount, "USD"))
    envelope = envelop(
        PlaceOrder(order_id="o", customer_id="c", lines=[line], payment_token=TOKEN), producer=USER, occurred_at=NOW
    )
    assert decode(encode(envelope), strict=True) == envelope


@given(quantity=st.one_of(st.integers(max_value=0), st.integers(min_value=10_001)))
def test_out_of_range_quantities_are_refused(quantity: int) -> None:
    raw = msgspec.json.decode(encode(envelop(place_order(), producer=USER, occurred_at=NOW)))
    raw["payload"]["lines"][0]["quantity"] = quantity
    with pytest.raises(DecodeError):
        decode(msgspec.json.encode(raw))
