"""The flows' Kafka output: it produces as records come and waits for delivery once per epoch, not per batch.

Bytewax's own ``KafkaSink`` flushes the producer after every batch it writes, so the
worker blocks for a broker round trip on each activation. Here the producer batches as
it likes (``linger.ms``) and the partition's snapshot, which Bytewax takes when an epoch
closes and before it records that epoch as done, waits for every record of the epoch to
be delivered. So what an epoch emitted is on the broker before the input offsets past it
are committed (at least once; the ids make repeats harmless), and a delivery that failed
crashes the flow at that point, so recovery replays the epoch instead of the record being lost.
"""

from __future__ import annotations

import time
import zlib

from bytewax.connectors.kafka import KafkaSinkMessage
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from confluent_kafka import KafkaError, Message, Producer

from flows.metrics import Epochs, Records, flow_of_step
from topology.kafka_client import client_config
from topology.settings import Settings

Out = KafkaSinkMessage[bytes | None, bytes | None]


class TopicsSink(FixedPartitionedSink[Out, None]):
    """Records to the topics each one names; ``producers`` partitions, routed by record key."""

    def __init__(self, brokers: str, config: dict[str, str], producers: int = 1, flush_timeout_s: float = 30.0) -> None:
        self.brokers, self.config, self.producers = brokers, dict(config), producers
        self.flush_timeout_s = flush_timeout_s

    def list_parts(self) -> list[str]:
        return [f"producer-{index}-of-{self.producers}" for index in range(self.producers)]

    def part_fn(self, item_key: str) -> int:
        return zlib.crc32(item_key.encode()) % self.producers

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> Outbox:
        # Delivery reports only for failures: only a failure needs telling.
        config = {**self.config, "bootstrap.servers": self.brokers, "delivery.report.only.error": True}
        flow = flow_of_step(step_id)
        return Outbox(Producer(config), self.flush_timeout_s, Epochs(flow), Records(flow, "out", "in"))


def sink(settings: Settings, principal: str) -> TopicsSink:
    """A flow's Kafka output: an idempotent producer per worker, logged in as ``principal``."""
    return TopicsSink(
        settings.bootstrap_servers,
        {
            **client_config(settings, principal),
            "enable.idempotence": "true",
            "acks": "all",
            "linger.ms": str(settings.flow_linger_ms),
        },
        producers=settings.flow_workers,
    )


def routing_key(record: Out) -> str:
    """The key ``TopicsSink`` routes a record by: its Kafka key, so one key keeps one producer's order."""
    return record.key.decode("utf-8", "replace") if record.key else ""


class Outbox(StatefulSinkPartition[Out, None]):
    def __init__(
        self, producer: Producer, flush_timeout_s: float, epochs: Epochs | None = None, records: Records | None = None
    ) -> None:
        self.records = records  # what it produced, counted per batch
        self.producer = producer
        self.flush_timeout_s = flush_timeout_s
        self.epochs = epochs  # told of each epoch's close (metrics)
        self.failure: str | None = None

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None and self.failure is None:
            self.failure = f"delivery to {message.topic()} failed: {error}"

    def write_batch(self, items: list[Out]) -> None:
        if self.records is not None:
            self.records.add(len(items))
        for record in items:
            while True:
                try:
                    self.producer.produce(
                        record.topic,
                        record.value,
                        record.key,
                        headers=record.headers,
                        timestamp=record.timestamp,
                        on_delivery=self._delivered,
                    )
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    self.producer.poll(0.01)
        self.producer.poll(0)

    def snapshot(self) -> None:
        """Called as the epoch closes: everything it produced must be on the broker first."""
        started = time.perf_counter()
        left = self.producer.flush(self.flush_timeout_s)
        if left:
            raise RuntimeError(f"{left} records not delivered within {self.flush_timeout_s} s; the epoch is replayed")
        if self.failure is not None:
            raise RuntimeError(f"{self.failure}; the epoch is replayed")
        if self.epochs is not None:
            self.epochs.flushed(started)

    def close(self) -> None:
        self.producer.flush(self.flush_timeout_s)
