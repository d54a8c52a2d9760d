"""The wire encoder of trace exports (topology/otlp.py) writes what the SDK's protobuf encoder writes."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)

from topology import otlp


def spans() -> Sequence[ReadableSpan]:
    finished: list[ReadableSpan] = []
    for service in ("orders", "sink-postgres"):
        exported = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"service.name": service, "service.namespace": "x"}))
        provider.add_span_processor(SimpleSpanProcessor(exported))
        tracer = provider.get_tracer("shopstream")
        remote = SpanContext(0xA1 << 100, 0xB2, is_remote=True, trace_flags=TraceFlags(1))
        parent = tracer.start_span(
            "shop.orders process",
            context=set_span_in_context(NonRecordingSpan(remote)),
            kind=SpanKind.CONSUMER,
            attributes={"s": "é unicode", "i": 5, "neg": -3, "big": 2**40, "f": 1.5, "b": True, "no": False},
        )
        child = tracer.start_span(
            "gateway authorize",
            context=set_span_in_context(parent),
            kind=SpanKind.CLIENT,
            links=[Link(remote, {"why": "batch"}), Link(parent.get_span_context())],
            attributes={"list": ["a", "b"], "ints": [1, 2, 3], "empty": ""},
        )
        child.add_event("retry", {"attempt": 2})
        child.set_status(Status(StatusCode.ERROR, "declined"))
        child.end()
        parent.set_status(Status(StatusCode.OK))
        parent.end()
        plain = tracer.start_span("x" * 300)
        plain.end()
        finished.extend(exported.get_finished_spans())
        provider.shutdown()
    return finished


def test_the_bytes_parse_to_the_request_the_sdk_encoder_builds() -> None:
    finished = spans()
    ours = ExportTraceServiceRequest.FromString(otlp.encode(finished))
    theirs = encode_spans(finished)
    assert ours == theirs
    assert len(ours.resource_spans) == 2
    assert [len(r.scope_spans[0].spans) for r in ours.resource_spans] == [3, 3]


def test_nothing_to_export_is_an_empty_request() -> None:
    assert otlp.encode([]) == b""
    assert ExportTraceServiceRequest.FromString(b"") == encode_spans([])
