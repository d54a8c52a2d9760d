"""Running a flow in process: its runners (1 and 2 workers), Kafka records in, events and dead letters out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bytewax.connectors.kafka import KafkaSinkMessage, KafkaSourceMessage
from bytewax.testing import cluster_main, run_main

from topology.dlq import DeadLetter
from topology.envelope import Envelope, Producer, decode, encode, envelop
from topology.messages import Message
from topology.settings import Settings
from topology.topics import Topic

SETTINGS = Settings()


def now() -> datetime:
    """Message time drives the saga's deadlines, and Bytewax wakes them on the wall clock: stamp messages now."""
    return datetime.now(UTC)


Runner = Callable[[Any], None]
RUNNERS: dict[str, Runner] = {
    "1 worker": lambda flow: run_main(flow),
    "2 workers": lambda flow: cluster_main(flow, [], 0, worker_count_per_proc=2),
}


def record(topic: Topic, key: str, message: Message, offset: int, who: Producer | None = None) -> KafkaSourceMessage:
    envelope = envelop(
        message, producer=who or Producer("user", "u1"), occurred_at=now() + timedelta(milliseconds=offset)
    )
    return raw(topic, key, encode(envelope), offset)


def raw(topic: Topic, key: str, value: bytes, offset: int) -> KafkaSourceMessage:
    return KafkaSourceMessage(key=key.encode(), value=value, topic=topic.name, partition=0, offset=offset)


def outputs(
    out: list[KafkaSinkMessage],
) -> tuple[list[tuple[str, Envelope]], list[tuple[KafkaSinkMessage, DeadLetter]]]:
    events: list[tuple[str, Envelope]] = []
    dead: list[tuple[KafkaSinkMessage, DeadLetter]] = []
    for msg in out:
        if msg.topic.endswith(".dlq"):
            dead.append((msg, DeadLetter.from_headers(msg.headers)))
        else:
            events.append((msg.topic, decode(msg.value)))
    return events, dead
