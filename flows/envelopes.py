"""What a flow reads (``Incoming``) and how what it sends is enveloped, with ids derived from the cause.

Outputs are at least once (Bytewax replays the epoch after the last snapshot on resume),
so every message a flow emits gets an id derived from the message that caused it and its
position among that message's effects: a replay emits byte-identical envelopes with the
same ids, and every consumer (flow or sink) treats a repeated id as a no-op.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import overload

from bytewax.connectors.kafka import KafkaSinkMessage

from flows.kafka_output import Out
from flows.metrics import COUNTED
from flows.outcome import Send
from topology.envelope import Envelope, Producer, encode
from topology.tracing import HEADER, current_traceparent

ID_NAMESPACE = uuid.UUID("6f1b2f4e-58a8-4f57-9a43-0c5a8f3b9d21")
NAMESPACE_BYTES = ID_NAMESPACE.bytes


@dataclass(frozen=True)
class Incoming:
    """A decoded message with where it came from."""

    envelope: Envelope
    topic: str
    partition: int
    offset: int
    value: bytes = b""  # the bytes as read, for a stage that passes the message on untouched
    key: bytes | None = None  # the record's key as read (a refused message goes to the DLQ with it)
    #: The record's ``traceparent`` header (the span that produced it); read only while tracing is on.
    record_trace: bytes | str | None = None


def derived_id(cause_id: str, index: int, kind: str) -> str:
    """``uuid.uuid5(ID_NAMESPACE, f"{cause_id}/{index}/{kind}").hex``, without building UUID objects.

    The same bytes (RFC 4122 name-based, SHA-1, version 5) at a fraction of the cost: every
    emitted message pays for one, and ids must not change across versions (a replay after an
    upgrade must re-emit the same ids).
    """
    digest = bytearray(hashlib.sha1(NAMESPACE_BYTES + f"{cause_id}/{index}/{kind}".encode()).digest()[:16])  # noqa: S324 - RFC 4122 v5 is SHA-1
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    return digest.hex()


@dataclass(frozen=True)
class Cause:
    """What an emitted message inherits from the message (or timer) that caused it."""

    id: str
    correlation_id: str
    traceparent: str | None
    occurred_at: datetime
    #: The ``traceparent`` of the span that handled the cause: the records emitted carry it in their headers.
    context: str | None = None

    @classmethod
    def of(cls, envelope: Envelope) -> Cause:
        """The cause an envelope is, handled in the current span (the step's, when tracing is on)."""
        return cls(
            envelope.id, envelope.correlation_id, envelope.traceparent, envelope.occurred_at, current_traceparent()
        )


@overload
def emit(sends: Iterable[Send], cause: Cause, service: str, prefix: str) -> tuple[list[Out], None]: ...


@overload
def emit(sends: Iterable[Send], cause: Cause, service: str, prefix: str, version: int) -> tuple[list[Out], int]: ...


def emit(
    sends: Iterable[Send], cause: Cause, service: str, prefix: str, version: int | None = None
) -> tuple[list[Out], int | None]:
    """Envelop each message (caused by ``cause``, with a stable id) and encode it for its topic (and copies).

    ``version`` is the version of the entity the flow's state holds, before these sends: each
    event among them carries the next one as ``seq`` (a flow emits events only about the
    entity its state is keyed on), and the version after them is returned with the records.
    Commands carry no ``seq``; without a ``version`` no message does.
    """
    producer = Producer("service", service)
    headers = [(HEADER, cause.context.encode())] if cause.context else []  # one list for all: never changed
    out: list[Out] = []
    for index, send in enumerate(sends):
        seq = None
        if version is not None and send.message.KIND == "event":
            version += 1
            seq = version
        counted = COUNTED.get(type(send.message))  # the business metrics (flows/metrics.py)
        if counted is not None:
            counted(send.message)
        envelope = Envelope(
            id=derived_id(cause.id, index, send.message.TYPE),
            type=send.message.TYPE,
            version=send.message.VERSION,
            occurred_at=cause.occurred_at,
            correlation_id=cause.correlation_id,
            causation_id=cause.id,
            traceparent=cause.traceparent,
            seq=seq,
            producer=producer,
            payload=send.message,
        )
        value = encode(envelope)
        out.append(
            KafkaSinkMessage(key=send.key.encode(), value=value, topic=send.topic.name_for(prefix), headers=headers)
        )
        for topic, key in send.copies:
            out.append(KafkaSinkMessage(key=key.encode(), value=value, topic=topic.name_for(prefix), headers=headers))
    return out, version
