"""The users flow and the PostgreSQL sink in process, over what was sent to the users' command topic on Kafka.

``catch_up`` reads every command sent so far under the settings' topic prefix, runs the users
flow over them from the start (the flow is a function of its input: a run from the start
emits the same events with the same ids and versions) and writes what its events mean to the
read models (the sink's own ``write_rows``), so a test sees an HTTP command's effect on the
read models in well under a second, without starting processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from bytewax.connectors.kafka import KafkaSinkMessage, KafkaSourceMessage
from bytewax.testing import TestingSink, TestingSource, run_main

from flows.users.flow import build_flow
from ops.kafka_admin import read_to_end
from sinks.postgres import write_rows
from sinks.projections import read_model_rows
from topology.dlq import DeadLetter
from topology.envelope import Envelope, decode
from topology.settings import Settings
from topology.topics import USER_COMMANDS


@dataclass
class UsersPipeline:
    settings: Settings
    #: every event the flow emitted at the last catch-up, in order
    events: list[Envelope] = field(default_factory=list)
    #: the commands it refused, with why
    dead: list[DeadLetter] = field(default_factory=list)

    def commands(self) -> list[KafkaSourceMessage]:
        topic = USER_COMMANDS.name_for(self.settings.topic_prefix)
        return [
            KafkaSourceMessage(
                key=m.key(), value=m.value(), topic=m.topic(), partition=m.partition(), offset=m.offset()
            )
            for m in read_to_end(self.settings, [topic])
        ]

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
