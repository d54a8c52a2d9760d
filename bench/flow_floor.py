"""The floor of the flows benchmark: a Bytewax flow that does nothing but what every flow step must.

It reads the pre-loaded commands with the flows' own input (``TopicsSource``), decodes each
envelope, keys it, keeps a count per key in a stateful step (snapshotted with 1 s epochs
into a recovery store, as the flows are) and produces the record again through the flows'
own output (``TopicsSink``): one record in, one record out, no logic, no gateway. Its rate,
in records a second, beside the plain consume-and-produce loop's, shows what Bytewax and
the Kafka edge cost before any saga work; a flow cannot pass a record on faster than this.

Run by ``bench.flows`` as ``python -m bench.flow_floor PREFIX COUNT RECOVERY_DIR``; prints the rate.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import run_main

from flows import kafka_input, kafka_output
from flows.kafka_input import In
from flows.kafka_output import Out, Outbox, TopicsSink, routing_key
from topology.envelope import decode
from topology.runtime import tune_collector
from topology.settings import Settings
from topology.topics import ORDER_COMMANDS


class CountingOutbox(Outbox):
    """The flows' outbox; once ``count`` records are written it waits for their delivery and reports the rate."""

    def __init__(self, outbox: Outbox, count: int) -> None:
        super().__init__(outbox.producer, outbox.flush_timeout_s)
        self.count, self.written = count, 0

    def write_batch(self, items: list[Out]) -> None:
        super().write_batch(items)
        self.written += len(items)
        if self.written >= self.count:
            self.producer.flush(60)
            print(f"{self.count / (time.perf_counter() - STARTED[0]):.0f}", flush=True)
            os._exit(0)  # the rate is all this process is for


class CountingSink(TopicsSink):
    def __init__(self, sink: TopicsSink, count: int) -> None:
        super().__init__(sink.brokers, sink.config, sink.producers, sink.flush_timeout_s)
        self.count = count

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> Outbox:
        return CountingOutbox(super().build_part(step_id, for_part, resume_state), self.count)


STARTED = [0.0]


def passed_on(count: int | None, msg: In, target: str) -> tuple[int, Out]:
    if not STARTED[0]:
        STARTED[0] = time.perf_counter()  # the first record read: the loop's clock starts the same way
    decode(msg.value)  # the same decode every flow pays for
    return (count or 0) + 1, Out(key=msg.key, value=msg.value, topic=target)


def build(settings: Settings, count: int, target: str) -> Dataflow:
    flow = Dataflow("floor")
    source = kafka_input.source(settings, [ORDER_COMMANDS])
    raw = op.input("in", flow, source)
    keyed = op.key_on("key", raw, lambda msg: (msg.key or b"").decode())
    counted = op.stateful_map("count", keyed, lambda state, msg: passed_on(state, msg, target))
    records = op.map("value", counted, lambda key_record: key_record[1])
    op.output("out", op.key_on("out-key", records, routing_key), CountingSink(kafka_output.sink(settings), count))
    return flow


def main() -> None:
    prefix, count, recovery = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    settings = Settings.from_env().model_copy(update={"topic_prefix": prefix})
    recovery.mkdir(parents=True, exist_ok=True)
    init_db_dir(recovery, 1)
    flow = build(settings, count, f"{prefix}bench.floor")
    tune_collector()
    run_main(
        flow,
        epoch_interval=timedelta(milliseconds=settings.flow_epoch_ms),
        recovery_config=RecoveryConfig(str(recovery)),
    )


if __name__ == "__main__":
    main()
