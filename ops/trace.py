"""``shopstream trace ORDER_ID``: one order's story across every process, in time order.

Four sources, each read as it is: the order's commands and events from Kafka (the topics an
order's messages travel on, from their start; a message belongs to the order when its payload
names it or it shares the correlation id of one that does, which brings in its notifications),
its dead letters (every DLQ topic), its spans from the trace backend (the traces its records'
``traceparent`` headers and envelopes name, and those the backend finds tagged with the order),
and its log records from the search store (``ops.logs``). A source that does not answer is
named in ``missing``; what the others gave is still told.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
import msgspec

from ops.dlq import list_records
from ops.exceptions import OpsError
from ops.kafka_admin import admin_client, read_to_end
from topology.envelope import Envelope, decode
from topology.exceptions import DecodeError
from topology.settings import Settings
from topology.topics import (
    INVENTORY_COMMANDS,
    INVENTORY_EVENTS,
    NOTIFICATION_COMMANDS,
    NOTIFICATION_EVENTS,
    ORDER_COMMANDS,
    ORDER_EVENTS,
    PARTNER_COMMANDS,
    PAYMENT_COMMANDS,
    PAYMENT_EVENTS,
    Topic,
)
from topology.tracing import HEADER

#: The topics an order's messages travel on (the saga's inbox holds copies of the others' answers).
STORY_TOPICS: tuple[Topic, ...] = (
    ORDER_COMMANDS,
    PARTNER_COMMANDS,
    ORDER_EVENTS,
    INVENTORY_COMMANDS,
    INVENTORY_EVENTS,
    PAYMENT_COMMANDS,
    PAYMENT_EVENTS,
    NOTIFICATION_COMMANDS,
    NOTIFICATION_EVENTS,
)
#: The service whose spans every order's traces hold, for the backend's search by tag.
SAGA_SERVICE = "orders"
#: How far back the backend is searched for the order's traces.
LOOKBACK = timedelta(days=7)
Kind = Literal["command", "event", "notification", "dead-letter", "span", "log"]


class TraceError(OpsError):
    pass


@dataclass(frozen=True)
class Entry:
    """One thing that happened to the order."""

    at: datetime
    kind: Kind
    service: str
    what: str
    detail: dict[str, Any] = field(default_factory=dict)
    depth: int = 0  # a span's depth in its trace, for the terminal

    def row(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "kind": self.kind, "service": self.service, "what": self.what, **self.detail}


@dataclass
class Story:
    order_id: str
    entries: list[Entry] = field(default_factory=list)
    trace_ids: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)  # source -> why it told nothing

    def sorted(self) -> list[Entry]:
        return sorted(self.entries, key=lambda e: (e.at, e.kind != "span", e.depth))


# -- Kafka ----------------------------------------------------------------------------------


def _names(settings: Settings) -> list[str]:
    prefix = settings.topic_prefix
    _, meta = admin_client(settings)
    names = [t.name_for(prefix) for t in STORY_TOPICS if not t.per_partner]
    for family in (t for t in STORY_TOPICS if t.per_partner):
        names += family.members(meta.topics, prefix)
    return names


def _trace_id(traceparent: bytes | str | None) -> str | None:
    if not traceparent:
        return None
    text = traceparent.decode("ascii", "replace") if isinstance(traceparent, bytes) else traceparent
    parts = text.split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


def messages(settings: Settings, order_id: str) -> tuple[list[Entry], set[str]]:
    """The order's commands and events, one entry per message (a copy on a second topic is not told twice)."""
    read: list[tuple[str, int, int, datetime, Envelope, str | None]] = []
    for msg in read_to_end(settings, _names(settings)):
        try:
            envelope = decode(msg.value())
        except DecodeError:
            continue  # an undecodable record is a dead letter's business
        _, stamp = msg.timestamp()
        header = dict(msg.headers() or []).get(HEADER)
        read.append(
            (msg.topic(), msg.partition(), msg.offset(), datetime.fromtimestamp(stamp / 1000, UTC), envelope, header)
        )
    correlations = {e.correlation_id for *_, e, _ in read if getattr(e.payload, "order_id", None) == order_id}
    entries: list[Entry] = []
    traces: set[str] = set()
    seen: set[str] = set()
    for topic, partition, offset, at, envelope, header in read:
        if envelope.correlation_id not in correlations or envelope.id in seen:
            continue
        seen.add(envelope.id)
        traces |= {t for t in (_trace_id(envelope.traceparent), _trace_id(header)) if t}
        kind: Kind = (
            "notification"
            if topic.endswith(("notifications.commands", "notifications.events"))
            else ("command" if envelope.payload.KIND == "command" else "event")
        )
        entries.append(
            Entry(
                at,
                kind,
                f"{envelope.producer.kind}:{envelope.producer.id}"
                if envelope.producer.kind != "service"
                else envelope.producer.id,
                f"{envelope.type} v{envelope.version} on {topic}{_summary(envelope)}",
                {
                    "record": f"{topic}/{partition}/{offset}",
                    "id": envelope.id,
                    "type": envelope.type,
                    "causation_id": envelope.causation_id,
                    "trace_id": _trace_id(header) or _trace_id(envelope.traceparent),
                    "payload": msgspec.to_builtins(envelope.payload),
                },
            )
        )
    return entries, traces


def _who(envelope: Envelope) -> str:
    """A service by its name, a user or partner as ``kind:id``."""
    producer = envelope.producer
    return producer.id if producer.kind == "service" else f"{producer.kind}:{producer.id}"


def _summary(envelope: Envelope) -> str:
    """A few payload fields worth a glance: a status, a reason, an amount, a channel."""
    payload = envelope.payload
    shown = []
    for name in ("status", "reason", "channel", "sku", "quantity", "payment_id"):
        value = getattr(payload, name, None)
        if value not in (None, ""):
            shown.append(f"{name}={value}")
    for name in ("amount", "total"):
        money = getattr(payload, name, None)
        if money is not None and hasattr(money, "amount"):
            shown.append(f"{name}={money.amount} {money.currency}")
    return f"  ({', '.join(shown)})" if shown else ""


def dead_letters(settings: Settings, order_id: str) -> list[Entry]:
    """The order's dead letters: records whose key is the order or whose payload names it."""
    entries = []
    for record in list_records(settings):
        named = record.key == order_id.encode()
        if not named and record.value:
            try:
                named = getattr(decode(record.value).payload, "order_id", None) == order_id
            except DecodeError:
                named = False
        if not named:
            continue
        letter = record.letter
        where = f"{letter.topic}/{letter.partition}/{letter.offset}" if letter else "?"
        entries.append(
            Entry(
                letter.failed_at if letter else record.timestamp,
                "dead-letter",
                letter.stage if letter else "?",
                f"{where} -> {record.dlq_topic}: {letter.error if letter else record.problem}",
                {"id": record.id, **record.summary()},
            )
        )
    return entries


# -- the trace backend ---------------------------------------------------------------------


def traces_tagged(client: httpx.Client, order_id: str, limit: int = 20) -> set[str]:
    """Trace ids the backend finds with a span tagged with the order (the saga's spans are)."""
    now = datetime.now(UTC)
    answer = client.get(
        "/api/traces",
        params={
            "service": SAGA_SERVICE,
            "tags": json.dumps({"shop.order_id": order_id}),
            "limit": limit,
            "start": int((now - LOOKBACK).timestamp() * 1_000_000),
            "end": int(now.timestamp() * 1_000_000),
        },
    )
    answer.raise_for_status()
    return {t["traceID"] for t in answer.json().get("data") or []}


def fetch_trace(client: httpx.Client, trace_id: str) -> dict[str, Any] | None:
    """One trace as the backend keeps it (Jaeger's JSON), or None when it has no such trace."""
    answer = client.get(f"/api/traces/{trace_id}")
    if answer.status_code == 404:
        return None
    answer.raise_for_status()
    data = answer.json().get("data") or []
    return data[0] if data else None


def span_entries(trace: dict[str, Any]) -> Iterator[Entry]:
    """Each span of a Jaeger trace, with its service, parent and depth."""
    processes = trace.get("processes", {})
    spans = trace.get("spans", [])
    parent_of: dict[str, str | None] = {}
    for span in spans:
        parents = [r["spanID"] for r in span.get("references", []) if r.get("refType") == "CHILD_OF"]
        parent_of[span["spanID"]] = parents[0] if parents else None

    def depth(span_id: str) -> int:
        level, seen = 0, {span_id}
        while (parent := parent_of.get(span_id)) is not None and parent in parent_of and parent not in seen:
            level, span_id = level + 1, parent
            seen.add(parent)
        return level

    for span in spans:
        tags = {t["key"]: t.get("value") for t in span.get("tags", [])}
        error = tags.get("error") in (True, "true") or tags.get("otel.status_code") == "ERROR"
        service = processes.get(span.get("processID"), {}).get("serviceName", "?")
        millis = span.get("duration", 0) / 1000
        what = f"{span['operationName']}  {millis:.1f} ms" + (
            "  ERROR " + str(tags.get("otel.status_description", "")) if error else ""
        )
        links = [r["spanID"] for r in span.get("references", []) if r.get("refType") == "FOLLOWS_FROM"]
        yield Entry(
            datetime.fromtimestamp(span["startTime"] / 1_000_000, UTC),
            "span",
            service,
            what,
            {
                "trace_id": span["traceID"],
                "span_id": span["spanID"],
                "parent_span_id": parent_of[span["spanID"]],
                "links": links,
                "duration_ms": millis,
                "error": error,
                "tags": tags,
            },
            depth(span["spanID"]),
        )


def spans(settings: Settings, order_id: str, trace_ids: Iterable[str]) -> tuple[list[Entry], list[str]]:
    """The spans of the order's traces; raises httpx.HTTPError when the backend does not answer."""
    with httpx.Client(base_url=settings.traces_url, timeout=10) as client:
        wanted = set(trace_ids) | traces_tagged(client, order_id)
        entries: list[Entry] = []
        found = []
        for trace_id in sorted(wanted):
            trace = fetch_trace(client, trace_id)
            if trace is not None:
                found.append(trace_id)
                entries += span_entries(trace)
    return entries, found


# -- logs ----------------------------------------------------------------------------------


def log_entries(settings: Settings, order_id: str) -> list[Entry]:
    from ops.logs import order_log_lines  # the logs' reader (ops/logs.py)

    entries = []
    for row in order_log_lines(settings, order_id):
        try:
            at = datetime.fromisoformat(str(row.get("@timestamp")))
        except ValueError:
            continue
        level = str(row.get("log.level", "")).upper()
        entries.append(
            Entry(at, "log", str(row.get("service.name", "?")), f"{level} {row.get('message', '')}", dict(row))
        )
    return entries


def order_story(settings: Settings, order_id: str) -> Story:
    """Everything each source tells of ``order_id``; a source that fails is named in ``missing``."""
    story = Story(order_id)
    traces: set[str] = set()
    try:
        told, traces = messages(settings, order_id)
        story.entries += told
        story.entries += dead_letters(settings, order_id)
    except OpsError as err:
        story.missing["kafka"] = str(err)
    try:
        told, story.trace_ids = spans(settings, order_id, traces)
        story.entries += told
    except httpx.HTTPError as err:
        story.missing["traces"] = f"the trace backend at {settings.traces_url} did not answer ({err})"
    try:
        story.entries += log_entries(settings, order_id)
    except (OpsError, ImportError) as err:
        story.missing["logs"] = str(err)
    return story


def render(story: Story) -> list[str]:
    """The story as terminal lines: local time, kind, service, what happened (spans indented by depth)."""
    entries = story.sorted()
    width = max((len(e.service) for e in entries), default=8)
    lines = [f"order {story.order_id}: {len(entries)} entries, traces {', '.join(story.trace_ids) or 'none'}"]
    for entry in entries:
        when = entry.at.astimezone().strftime("%H:%M:%S.%f")[:-3]
        indent = "  " * entry.depth
        lines.append(f"{when}  {entry.kind:<12} {entry.service:<{width}}  {indent}{entry.what}")
    lines += [f"({source}: {why})" for source, why in story.missing.items()]
    return lines
