"""The users flow and the PostgreSQL sink in process, over what was sent to the users' command topic on Kafka.

``catch_up`` reads every command sent so far under the settings' topic prefix, runs the users
flow over them from the start (the flow is a function of its input: a run from the start
emits the same events with the same ids and versions) and writes what its events mean to the
read models (the sink's own ``write_rows``), so a test sees an HTTP command's effect on the
read models in well under a second, without starting processes. ``close`` when done.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import psycopg
from bytewax.connectors.kafka import KafkaSinkMessage, KafkaSourceMessage
from bytewax.testing import TestingSink, TestingSource, run_main
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from flows.users.flow import build_flow
from ops.kafka_admin import admin_client, end_offsets, reader
from sinks.postgres import write_rows
from sinks.projections import read_model_rows
from topology.dlq import DeadLetter
from topology.envelope import Envelope, decode
from topology.settings import Settings
from topology.topics import USER_COMMANDS

READ_TIMEOUT_S = 15


@dataclass
class UsersPipeline:
    settings: Settings
    #: every event the flow emitted at the last catch-up, in order
    events: list[Envelope] = field(default_factory=list)
    #: the commands it refused, with why
    dead: list[DeadLetter] = field(default_factory=list)
    _admin: AdminClient | None = field(default=None, repr=False)
    _partitions: list[TopicPartition] = field(default_factory=list, repr=False)
    _consumer: Consumer | None = field(default=None, repr=False)

    def commands(self) -> list[KafkaSourceMessage]:
        """Every command on the topic up to its end offsets now (read without waiting on an empty fetch)."""
        topic = USER_COMMANDS.name_for(self.settings.topic_prefix)
        if self._consumer is None:
            self._admin, meta = admin_client(self.settings)
            self._partitions = [TopicPartition(topic, p) for p in meta.topics[topic].partitions]
            self._consumer = reader(self.settings, **{"fetch.wait.max.ms": 10})
        todo = {p: end for (_, p), end in end_offsets(self._admin, self._partitions).items() if end > 0}
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in todo])
        found: list[KafkaSourceMessage] = []
        deadline = time.monotonic() + READ_TIMEOUT_S
        while todo:
            assert time.monotonic() < deadline, f"{topic}: not read to its end in {READ_TIMEOUT_S} s"
            for m in self._consumer.consume(500, timeout=0.1):
                if m.error() is None and m.offset() < todo.get(m.partition(), 0):
                    found.append(
                        KafkaSourceMessage(
                            key=m.key(), value=m.value(), topic=topic, partition=m.partition(), offset=m.offset()
                        )
                    )
                    if m.offset() + 1 >= todo[m.partition()]:
                        del todo[m.partition()]
        return found

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()

    def catch_up(self) -> list[Envelope]:
        """The events of every command sent so far, written to the read models; those events."""
        out: list[KafkaSinkMessage] = []
        run_main(build_flow(TestingSource(self.commands()), TestingSink(out), self.settings))
        self.events = [decode(m.value) for m in out if not m.topic.endswith(".dlq")]
        self.dead = [DeadLetter.from_headers(m.headers) for m in out if m.topic.endswith(".dlq")]
        rows = [row for envelope in self.events for row in read_model_rows(envelope)]
        options = f"-c search_path={self.settings.pg_schema}"
        with psycopg.connect(self.settings.pg_url, options=options) as conn, conn.transaction():
            write_rows(conn, rows)
        return self.events
