"""What a pure logic step returns: messages to send, each with its topic and key."""

from __future__ import annotations

from dataclasses import dataclass

from topology.messages import Message
from topology.topics import ORDER_INBOX, Topic


@dataclass(frozen=True)
class Send:
    topic: Topic
    key: str
    message: Message
    # The same envelope (same id, same bytes) to these topics too, each with its own key.
    copies: tuple[tuple[Topic, str], ...] = ()


@dataclass(frozen=True)
class Refusal:
    """The message is refused: it changes no state, and goes to its topic's DLQ with ``reason``."""

    reason: str


def event(topic: Topic, key: str, message: Message) -> Send:
    """An event on its topic and, when the orders saga acts on its type, the same envelope in the order's inbox.

    The saga reads only its inbox (one log per order, so a replay meets an order's messages
    in the same order). A participant answering there itself, as an orchestrated saga's
    participants answer on the orchestrator's reply channel, spares the orders flow reading
    the answer from the event topic and forwarding it: a consume, a produce and a hop less.
    What the inbox declares decides which events are answers.
    """
    if type(message) not in ANSWERS:
        return Send(topic, key, message)
    order_id: str = message.order_id  # type: ignore[attr-defined]
    return Send(topic, key, message, ((ORDER_INBOX, order_id),))


ANSWERS = frozenset(ORDER_INBOX.messages)
