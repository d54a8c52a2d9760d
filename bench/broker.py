"""Raw produce and consume throughput on the local Kafka, the baseline later benchmarks compare with.

Run: ``make bench`` or ``python -m bench.broker [--messages N]`` with the stack up.
"""

from __future__ import annotations

import argparse
import time
import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from topology.access import OPERATOR
from topology.kafka_client import client_config
from topology.settings import Settings

RECORD = b"x" * 200


@dataclass(frozen=True)
class Row:
    case: str
    messages: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    def line(self) -> str:
        mib = self.rate * len(RECORD) / 2**20
        return f"| {self.case:<44} | {self.messages:>9,} | {self.seconds:>7.2f} | {self.rate:>11,.0f} | {mib:>6.1f} |"


def produce(settings: Settings, topic: str, count: int, **config: object) -> Row:
    producer = Producer({**client_config(settings, OPERATOR), "linger.ms": 5, **config})
    began = time.perf_counter()
    for i in range(count):
        while True:
            try:
                producer.produce(topic, RECORD, key=str(i % 1024).encode())
                break
            except BufferError:
                producer.poll(0.01)
        if i % 10_000 == 0:
            producer.poll(0)
    remaining = producer.flush(60)
    seconds = time.perf_counter() - began
    assert remaining == 0, f"{remaining} messages not delivered"
    label = ", ".join(f"{k}={v}" for k, v in config.items()) or "defaults"
    return Row(f"produce ({label})", count, seconds)


def consume(settings: Settings, topic: str, count: int) -> Row:
    consumer = Consumer(
        {
            **client_config(settings, OPERATOR),
            "group.id": f"bench-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    began = None
    while seen < count:
        batch = consumer.consume(10_000, timeout=1.0)
        if batch and began is None:
            began = time.perf_counter()
        seen += sum(1 for msg in batch if msg.error() is None)
    seconds = time.perf_counter() - (began or time.perf_counter())
    consumer.close()
    return Row("consume (batch 10k)", count, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--partitions", type=int, default=3)
    args = parser.parse_args()
    settings = Settings.from_env()
    admin = AdminClient({**client_config(settings, OPERATOR)})
    topics = [f"bench.broker.{uuid.uuid4().hex[:8]}.{n}" for n in range(2)]
    for future in admin.create_topics([NewTopic(t, args.partitions, 1) for t in topics]).values():
        future.result(timeout=30)
    try:
        rows = [
            produce(settings, topics[0], args.messages, acks=1),
            produce(settings, topics[1], args.messages, **{"enable.idempotence": True, "acks": "all"}),
            consume(settings, topics[0], args.messages),
        ]
    finally:
        for future in admin.delete_topics(topics).values():
            future.result(timeout=30)
    print(
        f"Kafka {settings.kafka_version} on {settings.bootstrap_servers}, {len(RECORD)}-byte records, "
        f"{args.partitions} partitions"
    )
    print(f"| {'case':<44} | {'messages':>9} | {'seconds':>7} | {'msg/s':>11} | {'MiB/s':>6} |")
    print(f"|{'-' * 46}|{'-' * 11}|{'-' * 9}|{'-' * 13}|{'-' * 8}|")
    for row in rows:
        print(row.line())


if __name__ == "__main__":
    main()
