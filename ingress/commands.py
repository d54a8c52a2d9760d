"""Commands to Kafka: each put in its envelope and sent under the request's ``Idempotency-Key``.

``Commands.send`` answers only once Kafka has the command (``Sent``: 202 and where to watch
it), or, for a key already used with the same request, that first answer again; the
resource writes the answer. A key used with another request, or still in flight, is a
problem; so is a broker that does not confirm in time (the key is free again then). A
precondition on the entity's state is judged only for a request that is no replay: the
state a first answer changed does not turn its retry into a refusal.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import falcon
import msgspec
import redis

from ingress.answers import Accepted
from ingress.auth.tokens import Principal
from ingress.bus import BusUnavailable, CommandBus
from ingress.idempotency import IdempotencyKeys, KeyConflict
from ingress.problems import Problem
from topology import tracing
from topology.envelope import TRACEPARENT, Envelope, Producer, envelop
from topology.messages import Message
from topology.settings import Settings
from topology.topics import Topic

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Call:
    """What a command takes from its request: the caller, the request's identity (for the key), its trace."""

    principal: Principal
    method: str
    path: str
    body: bytes
    idempotency_key: str | None = None
    traceparent: str | None = None

    @classmethod
    def of(cls, req: falcon.Request, body: bytes) -> Call:
        """The request's call, ``body`` being the bytes it was read from."""
        key = req.get_header("Idempotency-Key")
        if key is not None and not (0 < len(key) <= MAX_KEY_LENGTH):
            raise Problem(400, "invalid-idempotency-key", f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters")
        # Traced: the request's server span, so the story's envelopes name it; else what the client sent.
        traceparent = tracing.current_traceparent() or req.get_header("traceparent")
        return cls(
            principal=req.context.principal,
            method=req.method,
            path=req.path,
            body=body,
            idempotency_key=key,
            traceparent=traceparent if traceparent and re.fullmatch(TRACEPARENT, traceparent) else None,
        )

    @property
    def caller(self) -> str:
        return f"{self.principal.kind}:{self.principal.subject}"


@dataclass(frozen=True)
class Sent:
    """The answer to a command: its status, its body and the headers that go with them."""

    status: int
    answer: Accepted
    headers: dict[str, str] = field(default_factory=dict)


class Commands:
    """Envelopes commands and sends them; the answer comes after Kafka has the command."""

    def __init__(self, bus: CommandBus, store: redis.Redis, settings: Settings) -> None:
        self.bus = bus
        self.keys = IdempotencyKeys(store, settings.redis_prefix)

    def deliver(
        self,
        topic: Topic,
        key: str,
        message: Message,
        producer: Producer,
        command_id: str,
        traceparent: str | None = None,
    ) -> None:
        """Send ``message`` as command ``command_id``, once Kafka confirms it; BusUnavailable if it does not."""
        envelope: Envelope = envelop(
            message, producer=producer, occurred_at=datetime.now(UTC), traceparent=traceparent, message_id=command_id
        )
        self.bus.send(topic, key, envelope)

    def send(
        self,
        call: Call,
        topic: Topic,
        key: str,
        message: Message,
        status_url: str,
        order_id: str | None = None,
        precondition: Callable[[], None] | None = None,
        **made: str,
    ) -> Sent:
        """Send ``message`` for ``call`` under its Idempotency-Key; the answer points at ``status_url``.

        ``precondition`` raises the Problem that refuses the command; it is not asked when the key's first
        answer is replayed, and anything it raises frees the key. ``made``: the ids of what the command
        makes (``address_id``, ``device_id``), told in the answer.
        """
        fingerprint = IdempotencyKeys.fingerprint(call.method, call.path, call.body)
        idem = call.idempotency_key
        if idem is not None:
            try:
                replay = self.keys.reserve(call.caller, idem, fingerprint)
            except KeyConflict as err:
                raise Problem(409 if err.in_flight else 422, "idempotency-key-conflict", str(err)) from None
            if replay is not None:
                first = msgspec.convert(replay.body, Accepted)
                return Sent(replay.status, first, {"Idempotent-Replayed": "true"})
        if precondition is not None:
            try:
                precondition()
            except Exception:
                if idem is not None:
                    self.keys.release(call.caller, idem)
                raise
        answer = Accepted(uuid.uuid4().hex, status_url, order_id, **made)
        principal = call.principal
        producer = Producer("partner" if principal.kind == "partner" else "user", principal.subject)
        try:
            self.deliver(topic, key, message, producer, answer.command_id, call.traceparent)
        except BusUnavailable as err:
            if idem is not None:
                self.keys.release(call.caller, idem)
            raise Problem(
                503, "unavailable", "the command could not be taken now", str(err), {"Retry-After": "1"}
            ) from None
        if idem is not None:
            self.keys.complete(call.caller, idem, fingerprint, 202, msgspec.to_builtins(answer))
        return Sent(202, answer, {"Location": status_url})
