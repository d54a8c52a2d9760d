"""The command bus while Kafka does not confirm: it refuses at once, then lets one send find out whether Kafka is back.

Against the real broker (a live bus sends and stays open) and a port where nothing listens.
Nothing here is timed: what is checked is which send was tried and which refused unsent.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka import Producer as KafkaProducer

from ingress.bus import BusUnavailable, KafkaBus
from tests.support.processes import free_port
from tests.support.waiting import eventually
from topology.envelope import Envelope, Producer, envelop
from topology.messages import CancelOrder
from topology.settings import Settings
from topology.topics import ORDER_COMMANDS

pytestmark = pytest.mark.stack


def command() -> Envelope:
    return envelop(CancelOrder(order_id="o1"), producer=Producer("user", "u1"), occurred_at=datetime.now(UTC))


class Counting(KafkaProducer):
    """The real producer, counting the records handed to it."""

    handed = 0

    def produce(self, *args: object, **kwargs: object) -> None:
        Counting.handed += 1
        super().produce(*args, **kwargs)  # type: ignore[arg-type]


def test_after_an_unconfirmed_send_the_bus_refuses_unsent_then_tries_one_again(private: Settings) -> None:
    dead = private.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"})
    bus = KafkaBus(dead, timeout_s=1.0, pause_s=0.5, producer_factory=Counting)
    Counting.handed = 0
    try:
        with pytest.raises(BusUnavailable, match=r"kafka (did not confirm|refused) the command"):
            bus.send(ORDER_COMMANDS, "o1", command())
        with pytest.raises(BusUnavailable, match="refused until it does again"):
            bus.send(ORDER_COMMANDS, "o1", command())
        assert Counting.handed == 1, "a refused command was never handed to the producer"
        time.sleep(0.6)  # past the pause: the next send is tried again
        with pytest.raises(BusUnavailable, match=r"kafka (did not confirm|refused) the command"):
            bus.send(ORDER_COMMANDS, "o1", command())
        assert Counting.handed == 2
    finally:
        bus.close()


def test_a_bus_whose_sends_are_confirmed_keeps_sending(private: Settings) -> None:
    bus = KafkaBus(private)
    try:
        for _ in range(3):
            bus.send(ORDER_COMMANDS, "o1", command())
    finally:
        bus.close()


class FailedForGood:
    """A producer after a fatal error (as librdkafka leaves one that the broker refused a producer id)."""

    error = KafkaError(KafkaError.CLUSTER_AUTHORIZATION_FAILED, "Failed to acquire idempotence PID", fatal=True)

    def poll(self, _timeout: float) -> int:
        raise KafkaException(self.error)

    def produce(self, *_args: object, **_kwargs: object) -> None:
        raise KafkaException(self.error)

    def flush(self, _timeout: float) -> int:
        return 0


def test_a_producer_failed_for_good_is_replaced_and_the_sends_go_on(private: Settings) -> None:
    made: list[object] = []

    def producer(config: dict[str, object]) -> KafkaProducer:
        made.append(FailedForGood() if not made else KafkaProducer(config))
        return made[-1]  # type: ignore[return-value]

    bus = KafkaBus(private, pause_s=0.2, producer_factory=producer)
    try:
        if bus.renewed == 0:  # a send on the failed producer is refused, not lost in a dead thread
            with pytest.raises(BusUnavailable, match="the producer failed"):
                bus.send(ORDER_COMMANDS, "o1", command())
        eventually(lambda: bus.renewed == 1, 10, "a new producer took over")
        time.sleep(0.3)  # past the pause the failed send set
        bus.send(ORDER_COMMANDS, "o1", command())  # the real broker confirms it
        assert len(made) == 2 and isinstance(made[-1], KafkaProducer)
    finally:
        bus.close()
