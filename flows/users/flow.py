"""Wiring of the users flow. Step ids are a state contract: never rename one without a migration note.

Run: ``python -m bytewax.run "flows.users.flow:build_flow()"`` (``shopstream flow users``).
"""

from __future__ import annotations

from typing import Any

from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from flows import streams
from flows.users import logic
from topology.messages import RegisterUser, UpdateProfile
from topology.settings import Settings

SERVICE = "users"
ACCEPTS = (RegisterUser, UpdateProfile)


def build_flow(
    source: Source[Any] | None = None, sink: Sink[Any] | None = None, settings: Settings | None = None
) -> Dataflow:
    return streams.entity_flow(
        streams.start(SERVICE, source, settings),
        ACCEPTS,
        "user",
        lambda item: item.envelope.payload.user_id,  # type: ignore[attr-defined]
        lambda user, item: logic.handle(user, item.envelope.payload, item.envelope.id),
        sink,
    )
