"""Wiring of the users flow. Step ids are a state contract: never rename one without a migration note.

Run: ``python -m flows run users`` (``shopstream flow users``).
"""

from __future__ import annotations

from typing import Any

from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from flows import templates
from flows.users import logic
from topology.messages import RegisterUser, UpdateProfile
from topology.settings import Settings

SERVICE = "users"
ACCEPTS = (RegisterUser, UpdateProfile)


def build_flow(
    source: Source[Any] | None = None, sink: Sink[Any] | None = None, settings: Settings | None = None
) -> Dataflow:
    return templates.entity_flow(
        templates.start(SERVICE, source, settings),
        ACCEPTS,
        "user",
        "user_id",
        lambda user, item: logic.handle(user, item.envelope.payload, item.envelope.id),
        sink,
    )
