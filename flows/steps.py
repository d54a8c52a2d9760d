"""Steps every flow shares, as Bytewax composite operators.

A composite's inner steps are scoped by the id it is given (``orders.decode_and_route.decode``).
Only stateless steps live here: a step that keeps state (a flow's input, its keyed steps,
its output) sits at the top of its flow, so its id, which names its state in the recovery
store, stays what the flow says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import bytewax.operators as op
from bytewax.dataflow import Stream, operator
from bytewax.operators import KeyedStream

from flows import metrics
from flows.dead_letters import classify
from flows.envelopes import Incoming
from flows.kafka_input import In
from flows.kafka_output import Out
from topology.topics import DeclaredMessages, Topic


@dataclass(frozen=True)
class Routed:
    """The decoded messages a stage handles, and the dead letters of what cannot be handled."""

    handled: Stream[Incoming]
    dead: Stream[Out]


@operator
def decode_and_route(
    step_id: str,
    up: Stream[In],
    stage: str,
    accepts: tuple[type, ...],
    consumes: Iterable[Topic],
    prefix: str,
    strict_topics: frozenset[str] = frozenset(),
) -> Routed:
    """Decode each record read from ``consumes``; keep those of the types this stage ``accepts``.

    A declared message of another type is skipped; a record that does not decode (strictly
    on ``strict_topics``) or whose type is not declared on its topic becomes a dead letter.
    """
    declared = DeclaredMessages(consumes, prefix)
    decoded = op.filter_map("decode", up, lambda msg: classify(msg, stage, accepts, declared, strict_topics))
    handled = metrics.Records(stage, "decode", "out")  # what goes to the flow's logic (flows/metrics.py)
    branches = op.branch("handled", decoded, lambda item: handled.seen(isinstance(item, Incoming)))
    return Routed(branches.trues, branches.falses)  # type: ignore[arg-type]


@operator
def collect_records(step_id: str, keyed: KeyedStream[list[Out]], *others: Stream[Out]) -> Stream[Out]:
    """The records a keyed step emitted (lists of records, by key) merged, unkeyed, with ``others``."""
    emitted_by = metrics.Records(metrics.flow_of_stream(keyed.stream_id, keyed.flow().flow_id), "handle", "out")

    def _records(key_records: tuple[str, list[Out]]) -> list[Out]:
        records = key_records[1]
        emitted_by.add(len(records))
        return records

    emitted = op.flat_map("unkey", keyed, _records)
    return op.merge("merge", emitted, *others)
