"""Wiring of the users flow. Step ids are a state contract: never rename one without a migration note.

Run: ``python -m bytewax.run "flows.users.flow:build_flow()"`` (``shopstream flow users``).
"""

from __future__ import annotations

from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from flows import streams
from flows.streams import Cause, Incoming, Out
from flows.users import logic
from topology.messages import RegisterUser, UpdateProfile
from topology.settings import Settings

SERVICE = "users"
ACCEPTS = (RegisterUser, UpdateProfile)


def build_flow(
    source: Source[Any] | None = None, sink: Sink[Any] | None = None, settings: Settings | None = None
) -> Dataflow:
    begun = streams.start(SERVICE, source, settings)
    prefix, process = begun.prefix, begun.process
    valid, dead = streams.split(begun.raw, SERVICE, ACCEPTS, process.consumes, prefix)
    keyed = op.key_on("key", valid, lambda item: item.envelope.payload.user_id)  # type: ignore[attr-defined]

    def step(
        state: tuple[logic.User | None, int] | None, item: Incoming
    ) -> tuple[tuple[logic.User | None, int], list[Out]]:
        user, version = state if state is not None else (None, 0)
        user, sends = logic.handle(user, item.envelope.payload, item.envelope.id)
        outs = streams.emit(sends, Cause.of(item.envelope), SERVICE, prefix, version)
        return (user, streams.advanced(version, sends)), outs

    users = op.stateful_map("user", keyed, step)
    emitted = op.flat_map("flatten", users, lambda key_outs: key_outs[1])
    op.output("out", op.merge("all", emitted, dead), sink or streams.sink(begun.settings))
    return begun.flow
