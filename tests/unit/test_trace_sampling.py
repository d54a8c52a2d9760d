"""Traces' cheap paths keep what they stand for: a request's trace is sampled at the configured ratio
(decided once, as the SDK's sampler would), and an unsampled request makes no span yet passes its
context on: its command's record and its log records name the trace."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from topology import logs, tracing

RATIO = 0.1
SAMPLED = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
UNSAMPLED = f"00-{'1' * 32}-{'2' * 16}-00"


def is_sampled(traceparent: str) -> bool:
    return bool(int(traceparent[-2:], 16) & 1)


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """The ingress traced as ``configure`` sets it up, at a 10% ratio, spans kept in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(RATIO)), id_generator=tracing._Ids())  # type: ignore[arg-type]
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider, "ingress")
    monkeypatch.setattr(tracing, "_bound", TraceIdRatioBased.get_bound_for_rate(RATIO))
    yield exporter
    tracing.shutdown()


def request(traceparent: str | None) -> tuple[str, list[tuple[str, bytes]], str | None]:
    """One request's answer header, its command record's headers and its log record's trace id."""
    span, token = tracing.server_span("POST", traceparent, {"http.request.method": "POST"})
    try:
        with tracing.producing("shop.orders.commands", "o1") as publish:
            headers = tracing.record_headers()
            publish.set_attribute("x", 1)
        span.set_attribute("http.response.status_code", 202)
        record = logging.LogRecord("ingress.access", logging.INFO, "", 0, "POST", None, None)
        logs.enrich(record)
        answer = tracing.format_traceparent(span.get_span_context())
    finally:
        tracing.end_current(span, token)
    assert tracing.current_traceparent() is None  # the context before the request is back
    return answer, headers, record.__dict__.get("trace.id")


def test_new_traces_are_sampled_at_the_ratio_and_the_sampled_ones_are_whole(spans: InMemorySpanExporter) -> None:
    answers = [request(None) for _ in range(3000)]
    sampled = [a for a in answers if is_sampled(a[0])]
    assert 0.06 * len(answers) < len(sampled) < 0.14 * len(answers)
    finished = spans.get_finished_spans()
    servers = [s for s in finished if s.name == "POST"]
    assert len(servers) == len(sampled) and len(finished) == 2 * len(sampled)  # a server and a publish span each
    for server in servers:
        assert (server.context.trace_id & ((1 << 64) - 1)) < tracing._bound  # the id the decision was made on
    by_trace = {f"{s.context.trace_id:032x}": s for s in servers}
    for answer, headers, trace_id in sampled:
        server = by_trace[answer[3:35]]
        assert answer == tracing.format_traceparent(server.context)
        [(name, value)] = headers
        assert name == tracing.HEADER and value.decode()[3:35] == answer[3:35] and is_sampled(value.decode())
        assert trace_id == answer[3:35]


def test_an_unsampled_request_makes_no_span_but_passes_its_context_on(spans: InMemorySpanExporter) -> None:
    answers = [request(None) for _ in range(200)]
    unsampled = [a for a in answers if not is_sampled(a[0])]
    assert unsampled
    for answer, headers, trace_id in unsampled:
        assert headers == [(tracing.HEADER, answer.encode())]  # the command's record names the same trace
        assert trace_id == answer[3:35] and int(trace_id, 16)
    assert len({a[0][3:35] for a in answers}) == len(answers)  # each request its own trace


def test_a_callers_decision_is_followed(spans: InMemorySpanExporter) -> None:
    answer, headers, trace_id = request(UNSAMPLED)
    assert answer == UNSAMPLED and headers == [(tracing.HEADER, UNSAMPLED.encode())] and trace_id == "1" * 32
    assert spans.get_finished_spans() == ()
    answer, headers, trace_id = request(SAMPLED)
    [publish, server] = spans.get_finished_spans()
    assert server.parent is not None and f"{server.parent.span_id:016x}" == SAMPLED[36:52]
    assert publish.parent is not None and publish.parent.span_id == server.context.span_id
    assert answer[3:35] == SAMPLED[3:35] == trace_id
    answer, _, _ = request("00-not-a-traceparent")  # malformed: a new trace, decided by the ratio
    assert answer[3:35] != SAMPLED[3:35]
