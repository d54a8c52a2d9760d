"""The edge every resource shares: strict bodies, the authorization decision, commands to Kafka.

``read_body`` is the WAF role for bodies (content type, size, strict schema); ``authorize``
turns a policy decision into 403 or 404; ``Commands`` sends one command under the
request's ``Idempotency-Key`` and answers 202 only once Kafka has it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TypeVar

import falcon
import msgspec
import redis

from ingress.auth.tokens import Principal
from ingress.bus import BusUnavailable, CommandBus
from ingress.idempotency import IdempotencyKeys, KeyConflict
from ingress.policy import Action, Decision, Resource, decide
from ingress.problems import Problem
from ingress.readmodel import ReadModel
from ingress.schemas import Accepted
from topology.envelope import TRACEPARENT, Envelope, Producer, envelop
from topology.messages import Message
from topology.settings import Settings
from topology.topics import Topic

S = TypeVar("S", bound=msgspec.Struct)
JSON = "application/json"


def read_body(req: falcon.Request, schema: type[S], max_bytes: int) -> tuple[S, bytes]:
    """The body as ``schema`` (strict), or a problem saying exactly what is wrong."""
    if not (req.content_type or "").split(";")[0].strip().lower() == JSON:
        raise Problem(415, "unsupported-media-type", "send application/json", f"got {req.content_type or 'nothing'}")
    if req.content_length is not None and req.content_length > max_bytes:
        raise Problem(413, "too-large", "body too large", f"at most {max_bytes} bytes")
    raw = req.bounded_stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise Problem(413, "too-large", "body too large", f"at most {max_bytes} bytes")
    try:
        return msgspec.json.decode(raw, type=schema), raw
    except msgspec.ValidationError as err:
        raise Problem(422, "invalid-body", "the body does not match the schema", str(err)) from None
    except msgspec.DecodeError as err:
        raise Problem(400, "malformed-body", "the body is not valid JSON", str(err)) from None


def authorize(principal: Principal, action: Action, resource: Resource | None = None) -> None:
    decision = decide(principal, action, resource)
    if decision is Decision.HIDE:
        raise Problem(404, "not-found", "not found")
    if decision is Decision.FORBID:
        raise Problem(403, "forbidden", "not allowed", f"{action} is not allowed for this caller")


def order_resource(reads: ReadModel, order_id: str) -> Resource:
    """An order as the policy sees it (its customer), read fresh: a just-placed order counts."""
    rows = reads.fetch("SELECT customer_id FROM orders WHERE order_id = %s", (order_id,), fresh=True).rows
    return Resource(customer_id=rows[0]["customer_id"], exists=True) if rows else Resource(exists=False)


def sku_resource(reads: ReadModel, sku: str) -> Resource:
    """A SKU as the policy sees it (its owning partner, None when no partner owns it), read fresh."""
    rows = reads.fetch("SELECT owner_partner_id FROM products WHERE sku = %s", (sku,), fresh=True).rows
    return Resource(owner_partner_id=rows[0]["owner_partner_id"] if rows else None, exists=bool(rows))


class Commands:
    """Send one command under the request's Idempotency-Key; the 202 comes after Kafka has it."""

    def __init__(self, bus: CommandBus, store: redis.Redis, settings: Settings) -> None:
        self.bus = bus
        self.keys = IdempotencyKeys(store, settings.redis_prefix)

    def send(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        raw: bytes,
        topic: Topic,
        key: str,
        message: Message,
        answer: Accepted,
    ) -> None:
        principal: Principal = req.context.principal
        caller = f"{principal.kind}:{principal.subject}"
        idem = req.get_header("Idempotency-Key")
        if idem is not None and not (0 < len(idem) <= 255):
            raise Problem(400, "invalid-idempotency-key", "Idempotency-Key must be 1 to 255 characters")
        fingerprint = IdempotencyKeys.fingerprint(req.method, req.path, raw)
        if idem is not None:
            try:
                replay = self.keys.reserve(caller, idem, fingerprint)
            except KeyConflict as err:
                raise Problem(409 if err.in_flight else 422, "idempotency-key-conflict", str(err)) from None
            if replay is not None:
                resp.status = falcon.code_to_http_status(replay.status)
                resp.media = replay.body
                resp.set_header("Idempotent-Replayed", "true")
                return
        traceparent = req.get_header("traceparent")
        envelope: Envelope = envelop(
            message,
            producer=Producer("partner" if principal.kind == "partner" else "user", principal.subject),
            occurred_at=datetime.now(UTC),
            traceparent=traceparent if traceparent and re.fullmatch(TRACEPARENT, traceparent) else None,
            message_id=answer.command_id,
        )
        try:
            self.bus.send(topic, key, envelope)
        except BusUnavailable as err:
            if idem is not None:
                self.keys.release(caller, idem)
            raise Problem(
                503, "unavailable", "the command could not be taken now", str(err), {"Retry-After": "1"}
            ) from None
        body = msgspec.to_builtins(answer)
        if idem is not None:
            self.keys.complete(caller, idem, fingerprint, 202, body)
        resp.status = falcon.HTTP_202
        resp.media = body
        resp.location = answer.status_url
