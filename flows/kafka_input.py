"""The flows' Kafka input: all of a flow's topics read by one Kafka consumer per slot.

Bytewax's own ``KafkaSource`` opens one consumer per topic partition, each with its own
threads, broker connection and fetch loop, and the worker polls them in turn. Here a
slot is one consumer assigned its share of every topic's partitions (partition ``p``
goes to slot ``p % slots``), polled without blocking every ``poll_interval``; while polls
find nothing the interval doubles up to ``idle_interval``, and the first record brings it back.

Topics of a per-partner family (``shop.partner.{partner}.commands``) are matched by pattern:
each slot lists the broker's topics when it starts and again every ``relist_interval``, and
begins reading a partner's topic that appeared meanwhile from its earliest offset.

Recovery: a slot's state is the next offset of each partition it reads, snapshotted with
the flow's epochs; a partition without a saved offset starts from the earliest one kept.
Slot names carry the slot count, so changing ``SHOP_FLOW_INPUT_SLOTS`` starts every
partition from its earliest offset again (the flows are idempotent by message id, so this
re-reads, it does not double any effect).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka import KafkaError as ConfluentKafkaError
from confluent_kafka.admin import ClusterMetadata

from flows.metrics import Epochs, Records, flow_of_step
from topology.kafka_client import client_config
from topology.settings import Settings
from topology.topics import PARTNER, PARTNER_ID, Topic

In = KafkaSourceMessage[bytes | None, bytes | None]
Offsets = dict[str, int]  # "topic:partition" -> next offset to read
#: The first wait after an empty poll when the poll interval is zero.
MIN_IDLE_STEP = timedelta(milliseconds=1)
#: How often a slot lists the broker's topics again for new members of its families.
RELIST_INTERVAL = timedelta(seconds=10)
log = logging.getLogger(__name__)


class TopicsSource(FixedPartitionedSource[In, Offsets]):
    """Every partition of ``topics``, spread over ``slots`` consumers."""

    def __init__(
        self,
        brokers: str,
        topics: Sequence[str],
        config: dict[str, str],
        slots: int = 1,
        batch_size: int = 1000,
        poll_interval: timedelta = timedelta(0),
        idle_interval: timedelta = timedelta(0),
        families: Sequence[str] = (),
        relist_interval: timedelta = RELIST_INTERVAL,
    ) -> None:
        """``families``: patterns (full match) of topic names read besides ``topics``, as they appear."""
        if slots < 1:
            raise ValueError("a source needs at least one slot")
        self.brokers, self.topics, self.config = brokers, tuple(topics), dict(config)
        self.families, self.relist_interval = tuple(re.compile(f) for f in families), relist_interval
        self.slots, self.batch_size, self.poll_interval = slots, batch_size, poll_interval
        self.idle_interval = max(idle_interval, poll_interval)

    def list_parts(self) -> list[str]:
        return [f"slot-{index}-of-{self.slots}" for index in range(self.slots)]

    def build_part(self, step_id: str, for_part: str, resume_state: Offsets | None) -> Slot:
        index = int(for_part.split("-")[1])
        flow = flow_of_step(step_id)
        slot = Slot(self, index, resume_state or {}, Records(flow, "in", "out"))
        slot.epochs = Epochs(flow) if index == 0 else None  # one slot counts the flow's epochs
        return slot


class Slot(StatefulSourcePartition[In, Offsets]):
    def __init__(self, source: TopicsSource, index: int, resume: Offsets, records: Records | None = None) -> None:
        self.records = records  # what it read, counted per batch (flows/metrics.py)
        self.epochs: Epochs | None = None  # told of each epoch's close (the slot a flow counts them by)
        self.batch_size, self.poll_interval, self.idle_interval = (
            source.batch_size,
            source.poll_interval,
            source.idle_interval,
        )
        self.wait = source.poll_interval
        self.awake: datetime | None = None
        self.source, self.index, self.resume = source, index, resume
        self.consumer = Consumer(
            {"group.id": "shopstream-unused", "enable.auto.commit": "false", **source.config}
            | {"bootstrap.servers": source.brokers, "enable.partition.eof": "false"}
        )
        metadata = self.consumer.list_topics(timeout=30)
        for topic in source.topics:
            found = metadata.topics.get(topic)
            if found is None or found.error is not None:
                raise RuntimeError(f"topic {topic!r} is not on the broker: run `shopstream topology apply`")
        self.read: set[str] = set()
        self.consumer.assign(self._new_partitions(metadata))
        self.relist_at = datetime.now(UTC) + source.relist_interval
        self.offsets: Offsets = dict(resume)

    def _new_partitions(self, metadata: ClusterMetadata) -> list[TopicPartition]:
        """The partitions of the declared topics and the families' new members that are this slot's."""
        topics = metadata.topics
        members = [name for name in topics if any(f.fullmatch(name) for f in self.source.families)]
        assignment: list[TopicPartition] = []
        for topic in sorted({*self.source.topics, *members} - self.read):
            found = topics[topic]
            if found.error is not None:
                continue  # a member still being created: the next listing takes it
            self.read.add(topic)
            for partition in sorted(found.partitions):
                if partition % self.source.slots == self.index:
                    offset = self.resume.get(f"{topic}:{partition}", OFFSET_BEGINNING)
                    assignment.append(TopicPartition(topic, partition, offset))
        return assignment

    def _relist(self) -> None:
        """Start reading the families' members that appeared since the last listing."""
        self.relist_at = datetime.now(UTC) + self.source.relist_interval
        added = self._new_partitions(self.consumer.list_topics(timeout=10))
        if added:
            log.info("reading new topics: %s", ", ".join(sorted({tp.topic for tp in added})))
            self.consumer.incremental_assign(added)

    def next_awake(self) -> datetime | None:
        return self.awake

    def next_batch(self) -> list[In]:
        if self.source.families and datetime.now(UTC) >= self.relist_at:
            self._relist()
        batch = self._read()
        if batch:
            self.wait = self.poll_interval
            if self.records is not None:
                self.records.add(len(batch))
        else:
            self.wait = min(max(self.wait * 2, MIN_IDLE_STEP), self.idle_interval)
        self.awake = datetime.now(UTC) + self.wait if self.wait else None
        return batch

    def _read(self) -> list[In]:
        batch: list[In] = []
        for msg in self.consumer.consume(self.batch_size, 0):
            error = msg.error()
            if error is not None:
                if error.fatal():
                    raise RuntimeError(f"fatal error consuming from Kafka: {error}")
                if error.code() != ConfluentKafkaError._PARTITION_EOF:
                    log.warning("kafka consumer: %s (the client retries)", error)
                continue
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            batch.append(
                KafkaSourceMessage(
                    key=msg.key(),
                    value=msg.value(),
                    topic=topic,
                    headers=msg.headers() or [],
                    latency=msg.latency(),
                    offset=offset,
                    partition=partition,
                    timestamp=msg.timestamp(),
                )
            )
            self.offsets[f"{topic}:{partition}"] = offset + 1
        return batch

    def snapshot(self) -> Offsets:
        if self.epochs is not None:
            self.epochs.closed()
        return dict(self.offsets)

    def close(self) -> None:
        self.consumer.close()


def source(settings: Settings, topics: Iterable[Topic], group: str | None, principal: str) -> TopicsSource:
    """A flow's Kafka input: one consumer per input slot for all its topics, logged in as ``principal``.

    Bytewax keeps its own offsets in the recovery store; the consumer group's committed
    offsets (auto-committed as records are read) are only for ``topology lag`` and health.
    """
    monitoring = {"group.id": group, "enable.auto.commit": "true", "auto.commit.interval.ms": "1000"} if group else {}
    topics = tuple(topics)
    return TopicsSource(
        settings.bootstrap_servers,
        [t.name_for(settings.topic_prefix) for t in topics if not t.per_partner],
        {
            **client_config(settings, principal),
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": str(settings.kafka_fetch_wait_ms),
            "fetch.min.bytes": str(settings.kafka_fetch_min_bytes),
            **monitoring,
        },
        slots=settings.flow_input_slots,
        poll_interval=timedelta(milliseconds=settings.flow_poll_ms),
        idle_interval=timedelta(milliseconds=settings.flow_idle_poll_ms),
        families=[family_pattern(t, settings.topic_prefix) for t in topics if t.per_partner],
    )


def family_pattern(topic: Topic, prefix: str) -> str:
    """The regular expression every member of a per-partner family matches, under ``prefix``."""
    head, tail = topic.name_for(prefix).split(PARTNER)
    return re.escape(head) + PARTNER_ID.pattern.strip("^$") + re.escape(tail)
