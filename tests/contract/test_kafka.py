"""The local broker is a real Kafka: partitions, idempotence, groups, transactions, durability."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from ops.stack.kafka import Kafka
from tests.support.scope import Scope
from topology.access import OPERATOR
from topology.kafka_client import client_config
from topology.settings import Settings

pytestmark = pytest.mark.stack


def produce(settings: Settings, topic: str, values: list[bytes], **config: object) -> None:
    producer = Producer({**client_config(settings, OPERATOR), "enable.idempotence": True, **config})
    errors: list[object] = []
    for i, value in enumerate(values):
        producer.produce(
            topic, value, key=str(i).encode(), on_delivery=lambda err, _msg: errors.append(err) if err else None
        )
    assert producer.flush(30) == 0
    assert errors == []


def consume(settings: Settings, topic: str, expected: int, group: str | None = None, **config: object) -> list[bytes]:
    consumer = Consumer(
        {
            **client_config(settings, OPERATOR),
            "group.id": group or f"g-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **config,
        }
    )
    consumer.subscribe([topic])
    seen: list[bytes] = []
    idle = 0
    while len(seen) < expected and idle < 20:
        batch = consumer.consume(500, timeout=0.5)
        idle = 0 if batch else idle + 1
        for msg in batch:
            assert msg.error() is None, msg.error()
            seen.append(msg.value())
    if group:
        consumer.commit(asynchronous=False)
    consumer.close()
    return seen


def high_watermarks(settings: Settings, topic: str, partitions: int) -> list[int]:
    consumer = Consumer({**client_config(settings, OPERATOR), "group.id": "hw-probe"})
    marks = [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)]
    consumer.close()
    return marks


def test_topic_is_created_with_its_partitions(settings: Settings, ns: Scope) -> None:
    topic = ns.create_topic("orders", partitions=6, config={"cleanup.policy": "compact"})
    admin = AdminClient({**client_config(settings, OPERATOR)})
    meta = admin.list_topics(topic, timeout=10)
    assert len(meta.topics[topic].partitions) == 6


def test_idempotent_producer_high_watermarks_equal_record_counts(settings: Settings, ns: Scope) -> None:
    topic = ns.create_topic("events", partitions=2)
    values = [f"record-{i:04d}".encode().ljust(200, b".") for i in range(100)]
    produce(settings, topic, values)
    assert sum(high_watermarks(settings, topic, 2)) == 100
    assert sorted(consume(settings, topic, 100)) == sorted(values)


def test_consumer_group_resumes_from_committed_offsets(settings: Settings, ns: Scope) -> None:
    topic = ns.create_topic("resume")
    produce(settings, topic, [f"{i}".encode() for i in range(50)])
    group = f"{ns.name}-group"
    first = consume(settings, topic, 50, group=group)
    assert len(first) == 50
    produce(settings, topic, [f"{i}".encode() for i in range(50, 80)])
    second = consume(settings, topic, 30, group=group)
    assert second == [f"{i}".encode() for i in range(50, 80)]


def test_transactional_consume_transform_produce(settings: Settings, ns: Scope) -> None:
    source = ns.create_topic("tx-in")
    sink = ns.create_topic("tx-out", partitions=2)
    produce(settings, source, [f"{i}".encode() for i in range(100)])
    group = f"{ns.name}-tx"
    consumer = Consumer(
        {
            **client_config(settings, OPERATOR),
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    producer = Producer({**client_config(settings, OPERATOR), "transactional.id": f"{ns.name}-txid"})
    producer.init_transactions(10)

    # An aborted transaction first: its records must never be seen by read_committed readers.
    producer.begin_transaction()
    for i in range(10):
        producer.produce(sink, f"aborted-{i}".encode())
    producer.flush(10)
    producer.abort_transaction(10)

    consumer.subscribe([source])
    done = 0
    idle = 0
    while done < 100 and idle < 20:
        batch = consumer.consume(25, timeout=0.5)
        if not batch:
            idle += 1
            continue
        producer.begin_transaction()
        for msg in batch:
            producer.produce(sink, b"out-" + msg.value(), key=msg.value())
        producer.send_offsets_to_transaction(
            consumer.position(consumer.assignment()), consumer.consumer_group_metadata(), 10
        )
        producer.commit_transaction(10)
        done += len(batch)
    consumer.close()
    assert done == 100

    committed = consume(settings, sink, 100, **{"isolation.level": "read_committed"})
    assert sorted(committed) == sorted(f"out-{i}".encode() for i in range(100))
    assert not any(v.startswith(b"aborted") for v in committed)

    probe = Consumer({**client_config(settings, OPERATOR), "group.id": group})
    offsets = probe.committed([TopicPartition(source, 0)], timeout=10)
    probe.close()
    assert offsets[0].offset == 100


def test_unreachable_broker_fails_fast() -> None:
    admin = AdminClient({"bootstrap.servers": "127.0.0.1:1", "log_level": 0})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=2)


def test_data_is_kept_across_a_broker_restart(private_settings: Settings) -> None:
    broker = Kafka(private_settings)
    broker.start()
    try:
        broker.wait_healthy(120)
        admin = AdminClient({**client_config(private_settings, OPERATOR)})
        admin.create_topics([NewTopic("durable", 3, 1)])["durable"].result(timeout=15)
        values = [f"v{i}".encode() for i in range(300)]
        produce(private_settings, "durable", values, acks="all")
        assert broker.stop() is True
        assert broker.pid() is None
        broker.start()
        broker.wait_healthy(120)
        assert sorted(consume(private_settings, "durable", 300)) == sorted(values)
        assert sum(high_watermarks(private_settings, "durable", 3)) == 300
    finally:
        broker.stop()
