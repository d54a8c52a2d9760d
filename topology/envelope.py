"""The one envelope every message travels in, and the only encoder and decoder.

Wire format: JSON (msgspec), so a DLQ record can be read by an operator. Decoding is
two-step: the envelope first with the payload kept raw, then the payload against the
struct registered for its ``(type, version)``, strictly (unknown fields and wrong
types are refused). Every failure is a ``DecodeError`` whose message is the reason a
DLQ record carries.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec

from topology.exceptions import DecodeError, UnknownMessageType
from topology.messages import REGISTRY, Message

TRACEPARENT = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"


class Producer(msgspec.Struct, frozen=True):
    """Who produced a message: a user, a partner or a service of the system."""

    kind: Literal["user", "partner", "service"]
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: str
    version: int
    occurred_at: datetime
    correlation_id: str
    causation_id: str | None = None
    traceparent: Annotated[str, msgspec.Meta(pattern=TRACEPARENT)] | None = None
    #: The entity's version after this event (1, 2, ... per key), stamped by the flow that owns
    #: the entity; sinks keep the newest and ignore older or repeated ones. None on commands.
    seq: int | None = None
    producer: Producer
    payload: Message

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None or self.occurred_at.utcoffset() is None:
            raise ValueError("occurred_at must be timezone-aware")


class _RawEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    type: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    version: Annotated[int, msgspec.Meta(ge=1, le=1000)]
    occurred_at: Annotated[datetime, msgspec.Meta(tz=True)]
    correlation_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    causation_id: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    traceparent: Annotated[str, msgspec.Meta(pattern=TRACEPARENT)] | None = None
    seq: Annotated[int, msgspec.Meta(ge=1, le=2**62)] | None = None
    producer: Producer
    payload: msgspec.Raw


_raw_decoder = msgspec.json.Decoder(_RawEnvelope)
_payload_decoders: dict[type[Message], msgspec.json.Decoder[Message]] = {}
_encoder = msgspec.json.Encoder()


def new_id() -> str:
    return uuid.uuid4().hex


def envelop(
    payload: Message,
    *,
    producer: Producer,
    occurred_at: datetime,
    correlation_id: str | None = None,
    causation: Envelope | None = None,
    traceparent: str | None = None,
    message_id: str | None = None,
) -> Envelope:
    """Wrap a message; a caused message inherits the correlation id and trace of its cause."""
    mid = message_id or new_id()
    return Envelope(
        id=mid,
        type=payload.TYPE,
        version=payload.VERSION,
        occurred_at=occurred_at.astimezone(UTC),
        correlation_id=correlation_id or (causation.correlation_id if causation else mid),
        causation_id=causation.id if causation else None,
        traceparent=traceparent or (causation.traceparent if causation else None),
        producer=producer,
        payload=payload,
    )


def encode(envelope: Envelope) -> bytes:
    return _encoder.encode(envelope)


def decode(data: bytes | None, *, strict: bool = False) -> Envelope:
    """Bytes to an Envelope with a typed payload, or a DecodeError naming the reason.

    Readers ignore unknown fields (so optional fields can be added); edges that take
    input from outside the system (partner topics) pass ``strict=True`` to refuse them.
    """
    if data is None:
        raise DecodeError("empty record (no value)")
    try:
        raw = _raw_decoder.decode(data)
    except msgspec.DecodeError as err:
        raise DecodeError(f"not a valid envelope: {err}") from None
    kind = REGISTRY.get((raw.type, raw.version))
    if kind is None:
        raise UnknownMessageType(f"unknown message type {raw.type!r} version {raw.version}")
    decoder = _payload_decoders.get(kind)
    if decoder is None:
        decoder = _payload_decoders[kind] = msgspec.json.Decoder(kind)
    try:
        payload = decoder.decode(raw.payload)
    except msgspec.DecodeError as err:
        raise DecodeError(f"invalid {raw.type} v{raw.version} payload: {err}") from None
    envelope = Envelope(
        id=raw.id,
        type=raw.type,
        version=raw.version,
        occurred_at=raw.occurred_at,
        correlation_id=raw.correlation_id,
        causation_id=raw.causation_id,
        traceparent=raw.traceparent,
        seq=raw.seq,
        producer=raw.producer,
        payload=payload,
    )
    if strict:
        unknown = _unknown_fields(msgspec.json.decode(data), msgspec.to_builtins(envelope), "$")
        if unknown:
            raise DecodeError(f"unknown fields: {', '.join(unknown)}")
    return envelope


def _unknown_fields(given: object, known: object, path: str) -> list[str]:
    """Paths of keys in ``given`` that the decoded shape ``known`` does not have."""
    if isinstance(given, dict) and isinstance(known, dict):
        found = [f"{path}.{k}" for k in given if k not in known]
        for key in given.keys() & known.keys():
            found += _unknown_fields(given[key], known[key], f"{path}.{key}")
        return found
    if isinstance(given, list) and isinstance(known, list):
        return [
            p for i, (g, k) in enumerate(zip(given, known, strict=False)) for p in _unknown_fields(g, k, f"{path}[{i}]")
        ]
    return []
