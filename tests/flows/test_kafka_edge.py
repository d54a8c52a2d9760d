"""The flows' Kafka input and output against the real broker: slots, resume offsets, delivery per epoch."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from bytewax.connectors.kafka import KafkaSinkMessage
from confluent_kafka import Producer, TopicPartition

from flows.kafka_input import Slot, TopicsSource
from flows.kafka_output import TopicsSink
from ops.kafka_admin import admin_client, end_offsets
from tests.support.scope import Scope
from topology.access import OPERATOR
from topology.kafka_client import client_config
from topology.settings import Settings

pytestmark = pytest.mark.stack


def fill(settings: Settings, topics: list[str], per_partition: int) -> None:
    producer = Producer({**client_config(settings, OPERATOR)})
    for topic in topics:
        for partition in range(3):
            for n in range(per_partition):
                producer.produce(topic, f"{topic}/{partition}/{n}".encode(), partition=partition)
    assert producer.flush(15) == 0


def drain(slot: Slot, expected: int, timeout_s: float = 15) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while len(seen) < expected and time.monotonic() < deadline:
        seen += [(m.value or b"").decode() for m in slot.next_batch()]
    time.sleep(0.3)
    seen += [(m.value or b"").decode() for m in slot.next_batch()]  # nothing more may come
    return seen


def test_slots_share_every_partition_once_and_resume_after_their_offsets(settings: Settings, ns: Scope) -> None:
    topics = [ns.create_topic("a", 3), ns.create_topic("b", 3)]
    fill(settings, topics, 4)
    source = TopicsSource(settings.bootstrap_servers, topics, client_config(settings, OPERATOR), slots=2)
    assert source.list_parts() == ["slot-0-of-2", "slot-1-of-2"]
    slots = [source.build_part("in", name, None) for name in source.list_parts()]
    read = [drain(slot, 16 if index == 0 else 8) for index, slot in enumerate(slots)]
    everything = {f"{t}/{p}/{n}" for t in topics for p in range(3) for n in range(4)}
    assert sorted(read[0] + read[1]) == sorted(everything), "every record once, across both slots"
    assert {r.split("/")[1] for r in read[0]} == {"0", "2"} and {r.split("/")[1] for r in read[1]} == {"1"}
    snapshot = slots[0].snapshot()
    assert snapshot == {f"{t}:{p}": 4 for t in topics for p in (0, 2)}
    for slot in slots:
        slot.close()

    resumed = source.build_part("in", "slot-0-of-2", {**snapshot, f"{topics[0]}:0": 2})
    assert sorted(drain(resumed, 2)) == [f"{topics[0]}/0/2", f"{topics[0]}/0/3"], "only what came after the offsets"
    resumed.close()


def test_the_output_is_delivered_when_the_epoch_closes_and_a_failed_delivery_fails_it(
    settings: Settings, ns: Scope
) -> None:
    topic = ns.create_topic("out", 3)
    sink = TopicsSink(settings.bootstrap_servers, {**client_config(settings, OPERATOR), "linger.ms": "1000"})
    outbox = sink.build_part("out", sink.list_parts()[0], None)
    outbox.write_batch([KafkaSinkMessage(key=f"k{n}".encode(), value=b"v", topic=topic) for n in range(5)])
    outbox.snapshot()  # returns only once the broker has all five, whatever linger says
    admin, _ = admin_client(settings)
    on_broker = sum(end_offsets(admin, [TopicPartition(topic, p) for p in range(3)]).values())
    assert on_broker == 5, "all five were on the broker when the epoch's snapshot returned"

    doomed_sink = TopicsSink(
        settings.bootstrap_servers, {**client_config(settings, OPERATOR), "message.timeout.ms": "1000"}
    )
    doomed = doomed_sink.build_part("out", "p", None)
    doomed.write_batch([KafkaSinkMessage(key=b"k", value=b"v", topic=ns.topic("never-created"))])
    with pytest.raises(RuntimeError, match=r"failed|not delivered"):
        doomed.snapshot()


def test_an_idle_slot_polls_less_and_less_until_a_record_comes(settings: Settings, ns: Scope) -> None:
    topic = ns.create_topic("idle", 1)
    source = TopicsSource(
        settings.bootstrap_servers,
        [topic],
        {**client_config(settings, OPERATOR), "fetch.wait.max.ms": "500", "fetch.min.bytes": "1"},
        poll_interval=timedelta(milliseconds=5),
        idle_interval=timedelta(milliseconds=40),
    )
    slot = source.build_part("in", "slot-0-of-1", None)
    waits = []
    for _ in range(5):
        assert slot.next_batch() == []
        waits.append(slot.wait)
    assert waits == [timedelta(milliseconds=ms) for ms in (10, 20, 40, 40, 40)], "doubling to the idle cap"
    assert slot.awake is not None
    producer = Producer({**client_config(settings, OPERATOR)})
    producer.produce(topic, b"a record")
    assert producer.flush(15) == 0
    batch: list[object] = []
    deadline = time.monotonic() + 10
    while not batch and time.monotonic() < deadline:
        batch = slot.next_batch()  # type: ignore[assignment]
    assert len(batch) == 1
    assert slot.wait == timedelta(milliseconds=5), "a batch with records brings the poll interval back"
    assert slot.next_batch() == []
    assert slot.wait == timedelta(milliseconds=10)
    slot.close()
