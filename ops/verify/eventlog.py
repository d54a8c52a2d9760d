"""The topics ``verify`` reads: each read once, from its start to the end offsets found at the start, decoded.

A replayed flow emits byte-identical envelopes with the same ids, so each envelope id counts
once per topic (``repeats`` counts the copies absorbed). A record that does not decode, or
whose type is not declared on its topic, is kept apart with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from confluent_kafka import KafkaException

from ops.kafka_admin import admin_client, read_to_end
from ops.verify.exceptions import CannotVerify, EmptySystem
from topology.envelope import Envelope, decode
from topology.exceptions import DecodeError
from topology.messages import Message
from topology.partners import admit
from topology.processes import ALL_EVENTS
from topology.settings import Settings
from topology.topics import (
    NOTIFICATION_COMMANDS,
    ORDER_COMMANDS,
    PARTNER_COMMANDS,
    STOCK_LEVELS,
    DeclaredMessages,
    Topic,
    all_topics,
)

M = TypeVar("M", bound=Message)

#: Every topic whose records are events the flows emit about the entity they own (each carries ``seq``).
EVENT_TOPICS: tuple[Topic, ...] = (*ALL_EVENTS, STOCK_LEVELS)
#: What verify reads: the commands an order or a notification starts from, and every event topic.
READ: tuple[Topic, ...] = (ORDER_COMMANDS, PARTNER_COMMANDS, NOTIFICATION_COMMANDS, *EVENT_TOPICS)
#: Read as the orders flow reads it, unknown fields refused: what it refuses was never accepted.
STRICT: frozenset[str] = frozenset({PARTNER_COMMANDS.name})


@dataclass(frozen=True)
class Entry:
    topic: Topic
    record: str  # TOPIC/PARTITION/OFFSET on the broker
    key: str | None
    envelope: Envelope

    @property
    def payload(self) -> Message:
        return self.envelope.payload


@dataclass(frozen=True)
class Unreadable:
    topic: Topic
    record: str
    reason: str


@dataclass
class EventLog:
    entries: dict[str, list[Entry]] = field(default_factory=dict)  # by declared topic name, in log order
    unreadable: list[Unreadable] = field(default_factory=list)
    records: int = 0
    repeats: int = 0
    #: per (broker topic, partition): the offset after the last record read
    ends: dict[tuple[str, int], int] = field(default_factory=dict)
    _seen: dict[str, set[str]] = field(default_factory=dict)
    #: per (declared topic name, envelope id): the highest ``seq`` a repeat of that envelope carried, where it
    #: is above the first copy's (a flow answering a repeated command again stamps the answer its next seq)
    repeat_seq: dict[tuple[str, str], int] = field(default_factory=dict)

    def of(self, topic: Topic) -> list[Entry]:
        return self.entries.get(topic.name, [])

    def messages(self, topic: Topic, kind: type[M]) -> Iterator[tuple[Entry, M]]:
        """The entries of ``topic`` whose payload is a ``kind``, with the payload typed."""
        for entry in self.of(topic):
            if isinstance(entry.payload, kind):
                yield entry, entry.payload

    def add(self, entry: Entry) -> None:
        seen = self._seen.setdefault(entry.topic.name, set())
        if entry.envelope.id in seen:
            self.repeats += 1
            if entry.envelope.seq is not None:
                at = (entry.topic.name, entry.envelope.id)
                self.repeat_seq[at] = max(self.repeat_seq.get(at, entry.envelope.seq), entry.envelope.seq)
            return
        seen.add(entry.envelope.id)
        self.entries.setdefault(entry.topic.name, []).append(entry)


def check_topology(settings: Settings) -> int:
    """How many declared topics the broker holds under the prefix; raises unless it holds them all."""
    _, meta = admin_client(settings)
    prefix = settings.topic_prefix
    declared = [t.name_for(prefix) for t in all_topics()]
    missing = [name for name in declared if name not in meta.topics]
    if len(missing) == len(declared):
        raise EmptySystem(
            f"no Shopstream topic under prefix {prefix!r} on {settings.bootstrap_servers}: nothing to verify\n"
            "  fix: pass the prefix the system runs under (--prefix or SHOP_TOPIC_PREFIX), "
            "or create the topics with `shopstream topology apply`"
        )
    if missing:
        raise CannotVerify(
            f"the topology is half applied under prefix {prefix!r}: {len(missing)} declared topics are missing "
            f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''})\n"
            "  fix: `shopstream topology apply`"
        )
    return len(declared)


def read_log(settings: Settings) -> EventLog:
    """Every record of the topics in ``READ``, decoded."""
    prefix = settings.topic_prefix
    by_name = {topic.name_for(prefix): topic for topic in READ if not topic.per_partner}
    _, meta = admin_client(settings)
    for family in (topic for topic in READ if topic.per_partner):  # every partner's topic the broker holds
        by_name |= dict.fromkeys(family.members(meta.topics, prefix), family)
    declared = DeclaredMessages(READ, prefix)
    log = EventLog()
    try:
        for msg in read_to_end(settings, list(by_name)):
            log.records += 1
            log.ends[msg.topic(), msg.partition()] = msg.offset() + 1
            topic = by_name[msg.topic()]
            record = f"{msg.topic()}/{msg.partition()}/{msg.offset()}"
            try:
                envelope = decode(msg.value(), strict=topic.name in STRICT)
            except DecodeError as err:
                log.unreadable.append(Unreadable(topic, record, str(err)))
                continue
            misplaced = declared.misplaced(msg.topic(), envelope)
            partner = topic.partner_of(msg.topic(), prefix)
            if misplaced is None and partner is not None and isinstance(refused := admit(partner, envelope), str):
                misplaced = refused  # refused by the orders flow as it is here: never accepted
            if misplaced is not None:
                log.unreadable.append(Unreadable(topic, record, misplaced))
                continue
            key = msg.key()
            log.add(Entry(topic, record, key.decode(errors="replace") if key is not None else None, envelope))
    except KafkaException as err:
        raise CannotVerify(f"Kafka at {settings.bootstrap_servers}: reading the topics failed: {err}") from None
    return log
