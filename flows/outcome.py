"""What a pure logic step returns: messages to send, each with its topic and key."""

from __future__ import annotations

from dataclasses import dataclass

from topology.messages import Message
from topology.topics import Topic


@dataclass(frozen=True)
class Send:
    topic: Topic
    key: str
    message: Message
