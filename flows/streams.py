"""The Kafka edge every flow shares: decode or dead-letter, envelop with stable ids, encode.

Outputs are at least once (Bytewax replays the epoch after the last snapshot on resume),
so every message a flow emits gets an id derived from the message that caused it and its
position among that message's effects: a replay emits byte-identical envelopes with the
same ids, and every consumer (flow or sink) treats a repeated id as a no-op.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSinkMessage, KafkaSourceMessage
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.outputs import Sink

from flows.kafka_input import TopicsSource
from flows.kafka_output import TopicsSink, routing_key
from flows.outcome import Send
from topology.dlq import DeadLetter
from topology.envelope import Envelope, Producer, decode, encode
from topology.exceptions import DecodeError
from topology.processes import PROCESSES, Process
from topology.settings import Settings
from topology.topics import Topic

S = TypeVar("S")
ID_NAMESPACE = uuid.UUID("6f1b2f4e-58a8-4f57-9a43-0c5a8f3b9d21")
NAMESPACE_BYTES = ID_NAMESPACE.bytes
Out = KafkaSinkMessage[bytes | None, bytes | None]
In = KafkaSourceMessage[bytes | None, bytes | None]


@dataclass(frozen=True)
class Incoming:
    """A decoded message with where it came from."""

    envelope: Envelope
    topic: str
    partition: int
    offset: int
    value: bytes = b""  # the bytes as read, for a stage that passes the message on untouched


def derived_id(cause_id: str, index: int, kind: str) -> str:
    """``uuid.uuid5(ID_NAMESPACE, f"{cause_id}/{index}/{kind}").hex``, without building UUID objects.

    The same bytes (RFC 4122 name-based, SHA-1, version 5) at a fifth of the cost: every
    emitted message pays for one, and ids must not change across versions (a replay after an
    upgrade must re-emit the same ids).
    """
    digest = bytearray(hashlib.sha1(NAMESPACE_BYTES + f"{cause_id}/{index}/{kind}".encode()).digest()[:16])  # noqa: S324 - RFC 4122 v5 is SHA-1
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    return digest.hex()


def decode_or_dead_letter(msg: In, stage: str, strict: bool = False) -> Incoming | Out:
    """The decoded message, or the dead letter record that carries it and the reason."""
    try:
        envelope = decode(msg.value, strict=strict)
    except DecodeError as err:
        return dead_letter(msg, str(err), stage)
    return Incoming(envelope, msg.topic or "", msg.partition or 0, msg.offset or 0, msg.value or b"")


def dead_letter(msg: In, reason: str, stage: str, attempts: int = 1) -> Out:
    letter = DeadLetter(
        msg.topic or "", msg.partition or 0, msg.offset or 0, reason, stage, attempts, datetime.now(UTC)
    )
    return KafkaSinkMessage(
        key=msg.key, value=msg.value, topic=letter.dead_letter_topic, headers=letter.headers(list(msg.headers))
    )


@dataclass(frozen=True)
class Cause:
    """What an emitted message inherits from the message (or timer) that caused it."""

    id: str
    correlation_id: str
    traceparent: str | None
    occurred_at: datetime

    @classmethod
    def of(cls, envelope: Envelope) -> Cause:
        return cls(envelope.id, envelope.correlation_id, envelope.traceparent, envelope.occurred_at)


def emit(sends: Iterable[Send], cause: Cause, service: str, prefix: str, version: int | None = None) -> list[Out]:
    """Envelop each message (caused by ``cause``, with a stable id) and encode it for its topic (and copies).

    ``version`` is the version of the entity the flow's state holds, before these sends: each
    event among them carries the next one as ``seq`` (a flow emits events only about the
    entity its state is keyed on), so sinks can keep the newest. Commands carry no ``seq``.
    """
    producer = Producer("service", service)
    out: list[Out] = []
    for index, send in enumerate(sends):
        seq = None
        if version is not None and send.message.KIND == "event":
            version += 1
            seq = version
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
        out.append(KafkaSinkMessage(key=send.key.encode(), value=value, topic=send.topic.name_for(prefix)))
        for topic, key in send.copies:
            out.append(KafkaSinkMessage(key=key.encode(), value=value, topic=topic.name_for(prefix)))
    return out


def emit_versioned(
    sends: Sequence[Send], cause: Cause, service: str, prefix: str, version: int
) -> tuple[list[Out], int]:
    """``emit`` for a flow that keeps an entity: the records, and the entity's version after them."""
    return emit(sends, cause, service, prefix, version), version + sum(1 for s in sends if s.message.KIND == "event")


@dataclass(frozen=True)
class FlowStart:
    """What every flow's wiring begins with: its settings, its declaration, the dataflow and its input."""

    settings: Settings
    process: Process
    flow: Dataflow
    raw: Stream[In]

    @property
    def prefix(self) -> str:
        return self.settings.topic_prefix


def entity_flow(
    begun: FlowStart,
    accepts: tuple[type, ...],
    step_id: str,
    key: Callable[[Incoming], str],
    handle: Callable[[S | None, Incoming], tuple[S | None, list[Send]]],
    given_sink: Sink[Any] | None,
) -> Dataflow:
    """The wiring of a flow that keeps one entity per key: decode or dead-letter, key, handle, emit.

    ``handle`` is the flow's logic for one message and the entity's state (None before the
    first). The step keeps the entity with its version, so each event it emits carries the
    next ``seq``. ``step_id`` names the state: a contract, never renamed without a migration note.
    """
    valid, dead = split(begun.raw, begun.process.name, accepts, begun.process.consumes, begun.prefix)
    keyed = op.key_on("key", valid, key)

    def step(state: tuple[S | None, int] | None, item: Incoming) -> tuple[tuple[S | None, int], list[Out]]:
        entity, version = state if state is not None else (None, 0)
        entity, sends = handle(entity, item)
        outs, version = emit_versioned(sends, Cause.of(item.envelope), begun.process.name, begun.prefix, version)
        return (entity, version), outs

    entities = op.stateful_map(step_id, keyed, step)
    emitted = op.flat_map("flatten", entities, lambda key_outs: key_outs[1])
    output(op.merge("all", emitted, dead), given_sink, begun.settings)
    return begun.flow


def output(records: Stream[Out], given_sink: Sink[Any] | None, settings: Settings) -> None:
    """The flow's one output step: the given sink (tests), else Kafka through ``TopicsSink``."""
    if given_sink is not None:
        op.output("out", records, given_sink)
        return
    op.output("out", op.key_on("out-key", records, routing_key), sink(settings))


def start(service: str, given_source: Source[Any] | None, settings: Settings | None) -> FlowStart:
    """A dataflow named after the service, reading the topics ``topology.processes`` says it consumes."""
    settings = settings or Settings.from_env()
    process = next(p for p in PROCESSES if p.name == service)
    flow = Dataflow(service)
    raw = op.input(
        "in", flow, given_source or source(settings, process.consumes, process.group_for(settings.topic_prefix))
    )
    return FlowStart(settings, process, flow, raw)


def source(settings: Settings, topics: Iterable[Topic], group: str | None = None) -> TopicsSource:
    """The flow's Kafka input: one consumer per input slot for all its topics.

    Bytewax keeps its own offsets in the recovery store; the consumer group's committed
    offsets (auto-committed as records are read) are only for ``topology lag`` and health.
    """
    monitoring = {"group.id": group, "enable.auto.commit": "true", "auto.commit.interval.ms": "1000"} if group else {}
    return TopicsSource(
        settings.bootstrap_servers,
        [t.name_for(settings.topic_prefix) for t in topics],
        {"isolation.level": "read_committed", "fetch.wait.max.ms": "10", "fetch.min.bytes": "65536", **monitoring},
        slots=settings.flow_input_slots,
        poll_interval=timedelta(milliseconds=settings.flow_poll_ms),
    )


def sink(settings: Settings) -> TopicsSink:
    return TopicsSink(
        settings.bootstrap_servers,
        {"enable.idempotence": "true", "acks": "all", "linger.ms": str(settings.flow_linger_ms)},
        producers=settings.flow_workers,
    )


def classify(
    msg: In, stage: str, accepts: tuple[type, ...], declared: dict[str, tuple[type, ...]], strict_topics: frozenset[str]
) -> Incoming | Out | None:
    """Decode and route one record.

    Returns the decoded message when this stage handles its type; None when the type is
    declared on that topic but is not this stage's business (skipped); a dead letter when
    the bytes do not decode (strictly on topics fed from outside) or the type does not
    belong on the topic at all.
    """
    decoded = decode_or_dead_letter(msg, stage, strict=(msg.topic or "") in strict_topics)
    if not isinstance(decoded, Incoming):
        return decoded
    payload = decoded.envelope.payload
    if not isinstance(payload, declared.get(decoded.topic, ())):
        return dead_letter(msg, f"{decoded.envelope.type} does not belong on {decoded.topic}", stage)
    return decoded if isinstance(payload, accepts) else None


def split(
    flow_input: Stream[In],
    stage: str,
    accepts: tuple[type, ...],
    consumes: Iterable[Topic],
    prefix: str,
    strict_topics: frozenset[str] = frozenset(),
) -> tuple[Stream[Incoming], Stream[Out]]:
    """The decoded messages this stage handles, and the dead letters of what cannot be handled."""
    declared = {topic.name_for(prefix): topic.messages for topic in consumes}
    classified = op.filter_map("classify", flow_input, lambda m: classify(m, stage, accepts, declared, strict_topics))
    branches = op.branch("valid", classified, lambda x: isinstance(x, Incoming))
    return branches.trues, branches.falses  # type: ignore[return-value]
