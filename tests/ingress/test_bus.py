"""The command bus while Kafka does not confirm: it refuses at once, then lets one send find out whether Kafka is back.

Against the real broker (a live bus sends and stays open) and a port where nothing listens.
Nothing here is timed: what is checked is which send was tried and which refused unsent.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from ingress.bus import BusUnavailable, KafkaBus
from tests.support.processes import free_port
from topology.envelope import Envelope, Producer, envelop
from topology.messages import CancelOrder
from topology.settings import Settings
from topology.topics import ORDER_COMMANDS

pytestmark = pytest.mark.stack


def command() -> Envelope:
    return envelop(CancelOrder(order_id="o1"), producer=Producer("user", "u1"), occurred_at=datetime.now(UTC))


def test_after_an_unconfirmed_send_the_bus_refuses_unsent_then_tries_one_again(private: Settings) -> None:
    dead = private.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"})
    bus = KafkaBus(dead, timeout_s=1.0, pause_s=0.5)
    try:
        with pytest.raises(BusUnavailable, match=r"kafka (did not confirm|refused) the command"):
            bus.send(ORDER_COMMANDS, "o1", command())
        queued = len(bus.producer)
        with pytest.raises(BusUnavailable, match="refused until it does again"):
            bus.send(ORDER_COMMANDS, "o1", command())
        # not one more in the producer's queue (the first one may have expired meanwhile on a slow machine)
        assert len(bus.producer) <= queued, "a refused command was never handed to the producer"
        time.sleep(0.6)  # past the pause: the next send is tried again
        with pytest.raises(BusUnavailable, match=r"kafka (did not confirm|refused) the command"):
            bus.send(ORDER_COMMANDS, "o1", command())
    finally:
        bus.close()


def test_a_bus_whose_sends_are_confirmed_keeps_sending(private: Settings) -> None:
    bus = KafkaBus(private)
    try:
        for _ in range(3):
            bus.send(ORDER_COMMANDS, "o1", command())
    finally:
        bus.close()
