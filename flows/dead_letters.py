"""What a flow cannot handle goes to its topic's DLQ, with the original bytes and the reason in headers.

A record is a dead letter when its bytes do not decode (strictly, unknown fields refused,
on topics fed from outside) or its type is not declared on the topic it came from.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from bytewax.connectors.kafka import KafkaSinkMessage, KafkaSourceMessage

from flows import metrics
from flows.envelopes import Incoming
from flows.kafka_input import In
from flows.kafka_output import Out
from topology.dlq import DeadLetter
from topology.envelope import decode
from topology.exceptions import DecodeError
from topology.topics import DeclaredMessages
from topology.tracing import header_of

log = logging.getLogger(__name__)


def dead_letter(
    msg: In,
    reason: str,
    stage: str,
    attempts: int = 1,
    dlq_topic: str | None = None,
    kind: metrics.DeadLetterReason = "refused",
    fields: Mapping[str, object] | None = None,
) -> Out:
    """The record to ``dlq_topic`` (by default its topic's, ``NAME.dlq``) with the reason in headers.

    ``kind`` is the reason's class, counted in ``shop_flow_dead_letters_total``. Logged at WARNING
    with ``fields`` (the order and correlation ids, when the record decoded).
    """
    metrics.dead_letter(stage, kind)
    letter = DeadLetter(
        msg.topic or "", msg.partition or 0, msg.offset or 0, reason, stage, attempts, datetime.now(UTC)
    )
    log.warning(
        "dead letter %s/%s/%s at %s: %s",
        letter.topic,
        letter.partition,
        letter.offset,
        stage,
        reason,
        extra={"event.action": "dead-letter", "event.reason": kind, "labels.stage": stage, **(fields or {})},
    )
    return KafkaSinkMessage(
        key=msg.key,
        value=msg.value,
        topic=dlq_topic or letter.dead_letter_topic,
        headers=letter.headers(list(msg.headers)),
    )


def refused(item: Incoming, reason: str, stage: str, dlq_topic: str | None = None) -> Out:
    """A decoded message the logic refused, as a dead letter of the record it was read from."""
    record: In = KafkaSourceMessage(
        key=item.key, value=item.value, topic=item.topic, partition=item.partition, offset=item.offset
    )
    envelope = item.envelope
    order_id = getattr(envelope.payload, "order_id", None)
    fields = {"labels.correlation_id": envelope.correlation_id, **({"shop.order_id": order_id} if order_id else {})}
    return dead_letter(record, reason, stage, dlq_topic=dlq_topic, fields=fields)


def decode_or_dead_letter(msg: In, stage: str, strict: bool = False) -> Incoming | Out:
    """The decoded message, or the dead letter record that carries it and the reason."""
    try:
        envelope = decode(msg.value, strict=strict)
    except DecodeError as err:
        return dead_letter(msg, str(err), stage, kind="undecodable")
    return Incoming(
        envelope,
        msg.topic or "",
        msg.partition or 0,
        msg.offset or 0,
        msg.value or b"",
        msg.key,
        header_of(msg.headers),
    )


def classify(
    msg: In, stage: str, accepts: tuple[type, ...], declared: DeclaredMessages, strict_topics: frozenset[str]
) -> Incoming | Out | None:
    """Decode and route one record.

    Returns the decoded message when this stage handles its type; None when the type is
    declared on that topic but is not this stage's business (skipped); a dead letter when
    the bytes do not decode (strictly on ``strict_topics``) or the type does not belong on
    the topic at all.
    """
    decoded = decode_or_dead_letter(msg, stage, strict=(msg.topic or "") in strict_topics)
    if not isinstance(decoded, Incoming):
        return decoded
    misplaced = declared.misplaced(decoded.topic, decoded.envelope)
    if misplaced is not None:
        return dead_letter(msg, misplaced, stage, kind="misplaced")
    return decoded if isinstance(decoded.envelope.payload, accepts) else None
