"""Wiring of the users flow. Step ids are a state contract: never rename one without a migration note.

Run: ``python -m flows run users`` (``shopstream flow users``).
"""

from __future__ import annotations

from flows import templates
from flows.users import logic
from topology.topics import USER_COMMANDS

SERVICE = "users"
ACCEPTS = USER_COMMANDS.messages

build_flow = templates.entity_flow_factory(
    SERVICE,
    ACCEPTS,
    "user",
    "user_id",
    lambda user, item: logic.handle(user, item.envelope.payload, item.envelope.id, item.envelope.occurred_at),
)
