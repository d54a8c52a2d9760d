"""What every sink shares: decode or dead-letter, write a batch, back off, then let Quix commit.

A sink is a Quix Streams ``BatchingSink``. Quix gathers one batch per topic partition
and flushes them at each checkpoint; ``flush`` decodes every record of all of them, lets
the store subclass write what it keeps in one go (one transaction, pipeline or bulk call:
one per checkpoint rather than one per partition), sends what can never be written
to the topic's DLQ with the reason, and only then returns, so offsets are committed after
the write. A store that cannot take writes raises ``StoreUnavailable``; the sink turns it
into Quix's ``SinkBackpressureError``: the batch is dropped, the partitions pause and are
read again from the last committed offset after ``SHOP_SINK_RETRY_AFTER_S``.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar, NamedTuple, TypeVar

from confluent_kafka import KafkaError, Message, Producer
from quixstreams.sinks import BatchingSink, SinkBackpressureError, SinkBatch
from quixstreams.sinks.base.item import SinkItem

from sinks import metrics, tracing
from sinks.exceptions import DeadLetterFailed, SinkError, StoreUnavailable
from sinks.projections import Unversioned
from topology.access import principal_name
from topology.dlq import DeadLetter
from topology.envelope import Envelope, decode
from topology.exceptions import DecodeError
from topology.kafka_client import client_config
from topology.processes import PROCESSES, Process
from topology.settings import Settings
from topology.topics import DeclaredMessages

log = logging.getLogger(__name__)
T = TypeVar("T")


class Record(NamedTuple):
    """A decoded event with the Kafka record it came in (a tuple: made once per event, cheaply)."""

    envelope: Envelope
    item: SinkItem


@dataclass(frozen=True)
class Rejected:
    """A record the store can never take, and why."""

    item: SinkItem
    reason: str


def project_each(
    records: Iterable[Record], project: Callable[[Envelope], T]
) -> tuple[list[tuple[Record, T]], list[Rejected]]:
    """Each record's projection; an event the projection refuses (no seq) is rejected with the reason."""
    done: list[tuple[Record, T]] = []
    rejected: list[Rejected] = []
    for record in records:
        try:
            done.append((record, project(record.envelope)))
        except Unversioned as err:
            rejected.append(Rejected(record.item, str(err)))
    return done, rejected


class DeadLetters:
    """The sink's producer of dead letters; ``send`` returns once Kafka has them all."""

    def __init__(self, settings: Settings, stage: str, principal: str) -> None:
        self.stage = stage
        self._producer = Producer({**client_config(settings, principal), "enable.idempotence": True, "linger.ms": 5})

    def send(self, topic: str, partition: int, rejected: list[Rejected]) -> None:
        if not rejected:
            return
        failures: list[str] = []

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                failures.append(str(err))

        now = datetime.now(UTC)
        for r in rejected:
            letter = DeadLetter(topic, partition, r.item.offset, r.reason, self.stage, 1, now)
            self._producer.produce(
                letter.dead_letter_topic,
                value=r.item.value,
                key=r.item.key,
                headers=letter.headers(
                    [(k, v if isinstance(v, bytes) else v.encode()) for k, v in r.item.headers or []]
                ),
                on_delivery=delivered,
            )
        left = self._producer.flush(30)
        if left or failures:
            raise DeadLetterFailed(
                f"{len(rejected)} dead letters for {topic}: {left} undelivered, errors {failures[:3]}"
            )
        log.warning(
            "%d dead letters of %s/%d at %s, the first: %s",
            len(rejected),
            topic,
            partition,
            self.stage,
            rejected[0].reason,
            extra={"event.action": "dead-letter", "labels.stage": self.stage},
        )


class EventSink(BatchingSink, ABC):
    """One store's sink. Subclasses connect in ``connect`` and write decoded records in ``store``."""

    name: ClassVar[str]

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.process: Process = next(p for p in PROCESSES if p.kind == "sink" and p.name == self.name)
        self._declared = DeclaredMessages(self.process.consumes, settings.topic_prefix)
        self._dead: DeadLetters | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    def setup(self) -> None:
        self._dead = DeadLetters(self.settings, f"sink.{self.name}", principal_name(self.process))
        self.connect()

    @abstractmethod
    def connect(self) -> None:
        """Open the store's client (lazily connecting clients are fine: the first write finds out)."""

    @abstractmethod
    def store(self, records: list[Record]) -> tuple[int, list[Rejected]]:
        """Write what this store keeps of ``records``, all or nothing; (records kept, records rejected).

        Raise ``StoreUnavailable`` when the store cannot take writes now.
        """

    def close(self) -> None:
        """Release the store's client."""

    def decode_batch(self, batch: SinkBatch) -> tuple[list[Record], list[Rejected]]:
        records: list[Record] = []
        rejected: list[Rejected] = []
        for item in batch:
            try:
                envelope = decode(item.value)
            except DecodeError as err:
                rejected.append(Rejected(item, str(err)))
                continue
            misplaced = self._declared.misplaced(batch.topic, envelope)
            if misplaced is not None:
                rejected.append(Rejected(item, misplaced))
                continue
            records.append(Record(envelope, item))
        return records, rejected

    def flush(self) -> None:
        """Write every partition's batch of this checkpoint in one store call (one transaction, one bulk)."""
        try:
            if self._batches:
                batches = list(self._batches.values())
                self.write_all(batches)
                metrics.written(self.name, batches)  # every sink's, whatever its write_all
        except SinkBackpressureError:
            raise
        except Exception as err:  # counted by kind, then Quix stops the sink as before (shop_sink_errors_total)
            metrics.ERRORS.labels(self.name, type(err).__name__).inc()
            raise
        finally:
            self._batches.clear()

    def write(self, batch: SinkBatch) -> None:
        self.write_all([batch])

    def backpressure(self, err: StoreUnavailable) -> SinkBackpressureError:
        """What a write raises when its store is away: Quix pauses, then reads the batch again."""
        metrics.BACKPRESSURE.labels(self.name).inc()
        log.warning(
            "%s: %s; pausing %.1fs and reading the batch again", self.name, err, self.settings.sink_retry_after_s
        )
        return SinkBackpressureError(retry_after=self.settings.sink_retry_after_s)

    def settle(self, rejected: dict[tuple[str, int], list[Rejected]], started: float, written: int) -> int:
        """Each partition's refused records to its DLQ and the batch counted; how many went to a DLQ."""
        if self._dead is None:
            raise SinkError("write before setup(): the dead letter producer is not open")
        for (topic, partition), letters in rejected.items():
            self._dead.send(topic, partition, letters)
        dead = sum(len(letters) for letters in rejected.values())
        metrics.BATCH_SECONDS.labels(self.name).observe(time.perf_counter() - started)
        metrics.EVENTS.labels(self.name, "written").inc(written)
        metrics.EVENTS.labels(self.name, "dead").inc(dead)
        return dead

    def write_all(self, batches: list[SinkBatch]) -> None:
        started = time.perf_counter()
        records: list[Record] = []
        rejected: dict[tuple[str, int], list[Rejected]] = {}
        for batch in batches:
            decoded, refused = self.decode_batch(batch)
            records += decoded
            rejected[batch.topic, batch.partition] = refused
        try:
            with tracing.batch(self.name, batches, records):
                kept, refused = self.store(records)
        except StoreUnavailable as err:
            raise self.backpressure(err) from err
        if refused:  # back to the partition each came from (rare: worth no bookkeeping per record)
            where = {id(item): (b.topic, b.partition) for b in batches for item in b}
            for r in refused:
                rejected[where[id(r.item)]].append(r)
        dead = self.settle(rejected, started, kept)
        metrics.EVENTS.labels(self.name, "skipped").inc(sum(b.size for b in batches) - kept - dead)
