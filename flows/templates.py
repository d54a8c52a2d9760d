"""The wiring every flow begins and ends with, and the whole wiring of a flow that keeps one entity per key."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Protocol, TypeVar

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.outputs import Sink

from flows import steps, tracing
from flows.dead_letters import refused
from flows.envelopes import Cause, Incoming, emit
from flows.kafka_input import In, source
from flows.kafka_output import Out, routing_key, sink
from flows.outcome import Refusal, Send
from topology.access import principal_name, principal_of
from topology.processes import PROCESSES, Process
from topology.settings import Settings

S = TypeVar("S")
#: The dataflow (scoped to one service) that the flow being built goes into, when it is hosted by a group,
#: and the service's name.
HOST: ContextVar[tuple[Dataflow, str] | None] = ContextVar("HOST", default=None)


def service_of(stream: Stream[Any]) -> str:
    """The service whose flow is being built: the host's, else the dataflow's own name (``start``)."""
    host = HOST.get()
    return host[1] if host is not None else stream.flow().flow_id


Handle = Callable[[S | None, Incoming], tuple[S | None, list[Send] | Refusal]]


@dataclass(frozen=True)
class FlowStart:
    """What every flow's wiring begins with: its settings, its declaration, the dataflow and its input."""

    settings: Settings
    process: Process
    flow: Dataflow
    raw: Stream[In]

    @property
    def prefix(self) -> str:
        return self.settings.topic_prefix


def start(service: str, given_source: Source[Any] | None, settings: Settings | None) -> FlowStart:
    """A dataflow named after the service, reading the topics ``topology.processes`` says it consumes.

    Built for a group (``flows/group.py``), the service's steps go into the group's dataflow instead.
    """
    settings = settings or Settings.from_env()
    process = next(p for p in PROCESSES if p.name == service)
    host = HOST.get()
    flow = host[0] if host is not None else Dataflow(service)
    raw = op.input(
        "in",
        flow,
        given_source
        or source(settings, process.consumes, process.group_for(settings.topic_prefix), principal_name(process)),
    )
    return FlowStart(settings, process, flow, raw)


def output(records: Stream[Out], given_sink: Sink[Any] | None, settings: Settings) -> None:
    """The flow's one output step: the given sink (tests), else Kafka through ``TopicsSink``."""
    if given_sink is not None:
        op.output("out", records, given_sink)
        return
    principal = principal_of("flow", service_of(records))
    op.output("out", op.key_on("route_to_producer", records, routing_key), sink(settings, principal))


class FlowFactory(Protocol):
    """``build_flow``: the flow on Kafka (settings from the environment), or on a test's source and sink."""

    def __call__(
        self, source: Source[Any] | None = None, sink: Sink[Any] | None = None, settings: Settings | None = None
    ) -> Dataflow: ...


def entity_flow_factory(
    service: str,
    accepts: tuple[type, ...],
    step_id: str,
    key_field: str,
    handle: Handle[S],
) -> FlowFactory:
    """The ``build_flow`` of a flow that is only an ``entity_flow`` (see there for the arguments)."""

    def build_flow(
        source: Source[Any] | None = None, sink: Sink[Any] | None = None, settings: Settings | None = None
    ) -> Dataflow:
        return entity_flow(start(service, source, settings), accepts, step_id, key_field, handle, sink)

    return build_flow


def entity_flow(
    begun: FlowStart,
    accepts: tuple[type, ...],
    step_id: str,
    key_field: str,
    handle: Handle[S],
    given_sink: Sink[Any] | None,
) -> Dataflow:
    """The wiring of a flow that keeps one entity per key: decode or dead-letter, key, handle, emit.

    Messages are keyed by their payload's ``key_field``. ``handle`` is the flow's logic for
    one message and the entity's state (None before the first); a ``Refusal`` it answers
    sends the message to its topic's DLQ with the reason, and the state it returns with it
    must be the state it was given. The step keeps the entity
    with its version, so each event it emits carries the next ``seq``. ``step_id`` names the
    state: a contract, never renamed without a migration note.
    """
    routed = steps.decode_and_route(
        "decode_and_route", begun.raw, begun.process.name, accepts, begun.process.consumes, begun.prefix
    )
    keyed = op.key_on(f"key_by_{key_field}", routed.handled, attrgetter(f"envelope.payload.{key_field}"))

    def step(state: tuple[S | None, int] | None, item: Incoming) -> tuple[tuple[S | None, int], list[Out]]:
        entity, version = state if state is not None else (None, 0)
        entity, sends = handle(entity, item)
        if isinstance(sends, Refusal):
            return (entity, version), [refused(item, sends.reason, begun.process.name)]
        outs, version = emit(sends, Cause.of(item.envelope), begun.process.name, begun.prefix, version)
        return (entity, version), outs

    entities = op.stateful_map(step_id, keyed, tracing.traced_step(step, begun.process.name))
    output(steps.collect_records("collect_records", entities, routed.dead), given_sink, begun.settings)
    return begun.flow
