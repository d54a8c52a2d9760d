"""The command bus: commands to Kafka, each answered only once the broker has it (acks=all)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from ingress.exceptions import IngressError
from topology import tracing
from topology.access import principal_of
from topology.envelope import Envelope, encode
from topology.kafka_client import client_config
from topology.settings import Settings
from topology.topics import Topic

log = logging.getLogger(__name__)


class BusUnavailable(IngressError):
    """Kafka did not confirm the command in time: the client is told to retry; nothing was half-written."""


class CommandBus(Protocol):
    def send(self, topic: Topic, key: str, envelope: Envelope) -> None: ...


class KafkaBus:
    """One idempotent producer per process; a thread serves delivery reports; each send waits for its own.

    After a send Kafka did not confirm, the bus refuses at once (nothing is produced) for
    ``pause_s``; then one send at a time tries again, and the others are refused while it is in
    flight, until one is confirmed. So while the broker is away a request costs a 503 right away,
    and the worker threads are not all held for ``timeout_s`` each while requests queue behind them.

    A fatal error (the idempotent producer lost its producer id: the broker refused it one, say
    while the process's ACLs were being changed) leaves a producer that can never send again: a
    new one takes over, and the sends that were in flight on the old one end as unconfirmed.
    """

    def __init__(
        self,
        settings: Settings,
        timeout_s: float = 5.0,
        pause_s: float = 1.0,
        producer_factory: Callable[[dict[str, object]], Producer] = Producer,
    ) -> None:
        self.prefix = settings.topic_prefix
        self.timeout_s, self.pause_s = timeout_s, pause_s
        self._lock = threading.Lock()
        self._refuse_until: float | None = None  # monotonic; None while sends are confirmed
        self._trying = False  # a send is finding out whether Kafka is back
        self._config: dict[str, object] = {
            **client_config(settings, principal_of("http", "ingress")),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 1,
            "message.timeout.ms": int(timeout_s * 1000),
            "socket.connection.setup.timeout.ms": 3000,
        }
        self._new_producer = producer_factory
        self.producer = producer_factory(self._config)
        self.renewed = 0  # producers replaced after a fatal error
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="kafka-delivery", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self.producer.poll(0.05)
            except KafkaException as err:  # fatal: this producer will never deliver again
                log.warning("the Kafka producer failed for good (%s); a new one takes over", err)
                self._stop.wait(self.pause_s)  # not a new producer per poll while the broker keeps refusing
                self.producer = self._new_producer(self._config)
                self.renewed += 1

    def send(self, topic: Topic, key: str, envelope: Envelope) -> None:
        self._admit()
        try:
            self._send(topic, key, envelope)
        except BusUnavailable:
            with self._lock:
                self._refuse_until, self._trying = time.monotonic() + self.pause_s, False
            raise
        with self._lock:
            self._refuse_until, self._trying = None, False

    def _admit(self) -> None:
        with self._lock:
            if self._refuse_until is None:
                return
            if time.monotonic() < self._refuse_until or self._trying:
                raise BusUnavailable("kafka did not confirm the last command: refused until it does again")
            self._trying = True

    def _send(self, topic: Topic, key: str, envelope: Envelope) -> None:
        name = topic.name_for(self.prefix)
        if tracing.TRACER is None:
            self._deliver(name, key, envelope)
            return
        with tracing.producing(
            name, key, tracing.message_attributes(envelope.type, envelope.id, envelope.payload)
        ) as span:
            try:
                self._deliver(name, key, envelope, tracing.record_headers())  # the record names the publish span
            except BusUnavailable as err:
                tracing.fail(span, str(err))
                raise

    def _deliver(self, name: str, key: str, envelope: Envelope, headers: list[tuple[str, bytes]] | None = None) -> None:
        done = threading.Event()
        failure: list[str] = []

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                failure.append(str(err))
            done.set()

        try:
            self.producer.produce(
                name, key=key.encode(), value=encode(envelope), on_delivery=delivered, headers=headers
            )
        except BufferError as err:
            raise BusUnavailable(f"the producer queue is full: {err}") from err
        except KafkaException as err:  # a fatal error: the delivery thread puts a new producer in place
            raise BusUnavailable(f"the producer failed: {err}") from err
        if not done.wait(self.timeout_s + 1):
            raise BusUnavailable("kafka did not confirm the command in time")
        if failure:
            raise BusUnavailable(f"kafka refused the command: {failure[0]}")

    def close(self) -> None:
        self._stop.set()
        self._poller.join(2)
        self.producer.flush(5)
