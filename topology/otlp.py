"""OTLP trace export without the protobuf objects: spans written straight to the wire format.

The OTLP exporter's own encoder builds a protobuf message per span, attribute and value
(``opentelemetry-exporter-otlp-proto-common``) and costs about 110 us of CPU per span here,
on the export thread, which holds the GIL while it runs: as much again as making the span.
``encode`` writes the same ``ExportTraceServiceRequest`` bytes (same fields, same values;
tests/unit/test_otlp.py parses both and compares them) by joining byte strings, for a few
microseconds per span. ``Exporter`` is the OTLP/HTTP exporter with that encoder; what it
sends, where, and how it retries are the exporter's own.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

_VARINTS = [bytes([i]) for i in range(128)]
_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
_DOUBLE = struct.Struct("<d").pack
#: SpanFlags: the context says whether its parent is remote (bit 8), and it is (bit 9).
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200


def _varint(value: int) -> bytes:
    if 0 <= value < 128:
        return _VARINTS[value]
    value &= 0xFFFFFFFFFFFFFFFF  # negative int64: ten bytes, two's complement
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field (``tag`` is the field's key byte(s))."""
    return tag + _varint(len(payload)) + payload


def _string(tag: bytes, text: str | None) -> bytes:
    return _field(tag, text.encode()) if text else b""


def _any_value(value: Any) -> bytes:
    # AnyValue: string 1, bool 2, int 3, double 4, array 5, kvlist 6, bytes 7
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _field(b"\x0a", value.encode())
    if isinstance(value, int):
        return b"\x18" + _varint(value)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join(_field(b"\x0a", _any_value(item)) for item in value))
    if isinstance(value, Mapping):
        return _field(b"\x32", b"".join(_field(b"\x0a", _key_value(str(k), v)) for k, v in value.items()))
    raise TypeError(f"an attribute value of type {type(value).__name__} cannot be exported: {value!r}")


def _key_value(key: str, value: Any) -> bytes:
    return _field(b"\x0a", key.encode()) + _field(b"\x12", _any_value(value))


#: Each attribute name's encoded ``KeyValue.key`` field (spans repeat the same few names).
_KEYS: dict[str, bytes] = {}


def _attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
    if not attributes:
        return b""
    out = []
    for key, value in attributes.items():
        encoded_key = _KEYS.get(key)
        if encoded_key is None:
            encoded_key = _KEYS[key] = _field(b"\x0a", key.encode()) if len(_KEYS) < 4096 else b""
            encoded_key = encoded_key or _field(b"\x0a", key.encode())
        if type(value) is str:
            text = value.encode()
            encoded = b"\x0a" + _varint(len(text)) + text
        else:
            encoded = _any_value(value)
        pair = encoded_key + b"\x12" + _varint(len(encoded)) + encoded
        out.append(tag + _varint(len(pair)) + pair)
    return b"".join(out)


def _count(tag: bytes, count: int) -> bytes:
    return tag + _varint(count) if count else b""


def _flags(parent: Any) -> int:
    return _HAS_IS_REMOTE | _IS_REMOTE if parent is not None and parent.is_remote else _HAS_IS_REMOTE


def _trace_state(trace_state: Any) -> str:
    return ",".join(f"{key}={value}" for key, value in trace_state.items()) if trace_state is not None else ""


def _span(span: ReadableSpan) -> bytes:
    context = span.get_span_context()
    assert context is not None  # noqa: S101 - an SDK span always has one
    parts = [
        b"\x0a\x10" + context.trace_id.to_bytes(16, "big"),
        b"\x12\x08" + context.span_id.to_bytes(8, "big"),
        _string(b"\x1a", _trace_state(context.trace_state)),
    ]
    parent = span.parent
    if parent is not None:
        parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
    parts.append(_string(b"\x2a", span.name))
    parts.append(b"\x30" + _varint(span.kind.value + 1))  # the proto's kinds start at UNSPECIFIED = 0
    if span.start_time:
        parts.append(b"\x39" + _FIXED64(span.start_time))
    if span.end_time:
        parts.append(b"\x41" + _FIXED64(span.end_time))
    parts.append(_attributes(b"\x4a", span.attributes))
    parts.append(_count(b"\x50", span.dropped_attributes))
    for event in span.events:
        body = b"\x09" + _FIXED64(event.timestamp) if event.timestamp else b""
        body += _string(b"\x12", event.name) + _attributes(b"\x1a", event.attributes)
        body += _count(b"\x20", event.dropped_attributes)
        parts.append(_field(b"\x5a", body))
    parts.append(_count(b"\x60", span.dropped_events))
    for link in span.links:
        link_context = link.context
        body = b"\x0a\x10" + link_context.trace_id.to_bytes(16, "big")
        body += b"\x12\x08" + link_context.span_id.to_bytes(8, "big")
        body += _attributes(b"\x22", link.attributes) + _count(b"\x28", link.dropped_attributes)
        body += b"\x35" + _FIXED32(_flags(link_context))
        parts.append(_field(b"\x6a", body))
    parts.append(_count(b"\x70", span.dropped_links))
    status = span.status
    body = _string(b"\x12", status.description) + _count(b"\x18", status.status_code.value)
    parts.append(_field(b"\x7a", body))
    parts.append(b"\x85\x01" + _FIXED32(_flags(parent)))  # flags: field 16, fixed32
    return b"".join(parts)


def encode(spans: Sequence[ReadableSpan]) -> bytes:
    """The ``ExportTraceServiceRequest`` of ``spans``, serialized: per resource, per scope, the spans."""
    # Grouped by identity: a Resource hashes by dumping its attributes to JSON, once per span.
    grouped: dict[int, tuple[Any, dict[int, tuple[Any, list[bytes]]]]] = {}
    for span in spans:
        resource, scope = span.resource, span.instrumentation_scope or None
        scopes = grouped.setdefault(id(resource), (resource, {}))[1]
        scopes.setdefault(id(scope), (scope, []))[1].append(_field(b"\x12", _span(span)))
    request = []
    for resource, scopes in grouped.values():
        body = [_field(b"\x0a", _attributes(b"\x0a", resource.attributes))]
        for scope, encoded in scopes.values():
            scope_body = b""
            if scope is not None:
                scope_body = _string(b"\x0a", scope.name) + _string(b"\x12", scope.version)
                scope_body += _attributes(b"\x1a", scope.attributes)
            scope_spans = _field(b"\x0a", scope_body) + b"".join(encoded)
            if scope is not None:
                scope_spans += _string(b"\x1a", scope.schema_url)
            body.append(_field(b"\x12", scope_spans))
        body.append(_string(b"\x1a", resource.schema_url))
        request.append(_field(b"\x0a", b"".join(body)))
    return b"".join(request)


class Exporter(OTLPSpanExporter):
    """The OTLP/HTTP span exporter, encoding with ``encode`` (its client, retries and timeouts unchanged)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        client = getattr(self, "_client", None)
        if client is None or self._shutdown:  # another SDK version than the one this was written for
            return super().export(spans)
        try:
            data = encode(spans)
        except Exception:  # noqa: BLE001 - a span that cannot be encoded: the SDK's encoder says why
            return super().export(spans)
        return SpanExportResult.SUCCESS if client.export(data).success else SpanExportResult.FAILURE
