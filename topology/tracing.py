"""Traces: OpenTelemetry spans, exported by OTLP over HTTP, only when ``SHOP_OTLP_ENDPOINT`` is set.

Off (the default) the tracing SDK is never imported: ``TRACER`` is None, and every hook of
the ingress, the flows and the sinks checks that first and does nothing else (no header is
parsed, no object made); the wrappers of ``flows/tracing.py`` return what they were given.
On, each service a process runs has a provider of its own (its ``service.name``): a
parent-based ratio sampler (``SHOP_TRACE_SAMPLE_RATIO`` decides where a trace starts, every
later span follows the flag its parent carries), and a batch processor with a bounded queue
(``SHOP_TRACE_QUEUE_SIZE``) exporting from its own thread: a backend that is down or slow
costs the spans it does not take, never a caller's time. No global provider is set, so
libraries that trace by themselves (the Elasticsearch client) stay silent.

Context travels as W3C ``traceparent``: in and out of the ingress on HTTP headers, and
between processes in Kafka record headers (OpenTelemetry messaging conventions: a
``<topic> publish`` producer span where a request sends a command, a ``<topic> process``
consumer span for each record a flow handles, whose context the records it emits carry).
The envelope's own ``traceparent`` is another thing: stamped once where a story starts and
inherited unchanged, so a replayed flow still emits byte-identical envelopes; the record
header names the span that produced that record, so it may differ between copies.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, cast

from topology.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.id_generator import IdGenerator
    from opentelemetry.trace import Span, SpanContext, Tracer

log = logging.getLogger(__name__)
_random = random.Random()  # noqa: S311 - trace ids, drawn as the SDK draws them (random.getrandbits)
#: The W3C header, in HTTP and in Kafka record headers.
HEADER = "traceparent"
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
#: The tracer of this process's first service; None while tracing is off (the hooks' one check).
TRACER: Tracer | None = None
#: One tracer per service this process runs (a flow group runs several), each its own ``service.name``.
_tracers: dict[str, Tracer] = {}
_providers: list[TracerProvider] = []
#: The OpenTelemetry names every hook uses, imported with the SDK.
_otel: Any = None


def configure(settings: Settings, *services: str) -> bool:
    """Turn tracing on for this process's ``services`` when the settings name an endpoint; True when on.

    Call once, at the edge of a process, after any fork (in a gunicorn worker, not its master).
    Each service gets a provider of its own (its ``service.name``) and its own export queue.
    """
    global TRACER
    if not settings.otlp_endpoint or not services:
        return TRACER is not None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    from topology.otlp import Exporter  # the OTLP/HTTP exporter with a cheaper encoder

    endpoint = f"{settings.otlp_endpoint.rstrip('/')}/v1/traces"
    # The exporter's own messages come per failed batch: ``_TellOnce`` says it once per outage instead.
    logging.getLogger("opentelemetry.exporter").setLevel(logging.CRITICAL)
    logging.getLogger("opentelemetry.sdk.trace.export").setLevel(logging.ERROR)
    logging.getLogger("opentelemetry.sdk._shared_internal").setLevel(logging.ERROR)  # "Queue full" per span dropped
    global _bound
    _bound = TraceIdRatioBased.get_bound_for_rate(settings.trace_sample_ratio)
    for service in services:
        if service in _tracers:
            continue
        provider = TracerProvider(
            resource=Resource.create({"service.name": service, "service.namespace": "shopstream"}),
            sampler=ParentBased(TraceIdRatioBased(settings.trace_sample_ratio)),
            id_generator=cast("IdGenerator", _Ids()),
        )
        provider.add_span_processor(
            BatchSpanProcessor(
                cast("SpanExporter", _TellOnce(Exporter(endpoint=endpoint, timeout=2), endpoint)),
                max_queue_size=settings.trace_queue_size,
                max_export_batch_size=min(512, settings.trace_queue_size),
                schedule_delay_millis=500,
                export_timeout_millis=3000,
            )
        )
        use_provider(provider, service)
    return True


#: Where the configured ratio sampler samples a new trace: its trace id's low 64 bits below this
#: (``TraceIdRatioBased``'s rule). Tests' own providers keep 2**64: every new trace goes to the SDK.
_bound = 1 << 64
_LOW_64 = (1 << 64) - 1
#: The trace id the next new trace takes (``server_span`` draws it first, to know the sampler's answer).
_PRIMED: ContextVar[int] = ContextVar("shopstream_primed_trace_id", default=0)


class _Ids:
    """The SDK's random ids, but a new trace takes the id ``server_span`` drew for it, when it drew one."""

    def __init__(self) -> None:
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

        self.random = RandomIdGenerator()

    def generate_span_id(self) -> int:
        return self.random.generate_span_id()

    def generate_trace_id(self) -> int:
        return _PRIMED.get() or self.random.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        return bool(self.random.is_trace_id_random())  # the drawn ids are as random


class _TellOnce:
    """A span exporter that logs once when exports start failing and once when they work again."""

    def __init__(self, exporter: Any, endpoint: str) -> None:
        self.exporter, self.endpoint, self.failing = exporter, endpoint, False

    def export(self, spans: Any) -> Any:
        result = self.exporter.export(spans)
        failed = result.name == "FAILURE"
        if failed and not self.failing:
            log.warning("trace export to %s failed: spans are dropped until it answers", self.endpoint)
        elif self.failing and not failed:
            log.info("trace export to %s works again", self.endpoint)
        self.failing = failed
        return result

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return bool(self.exporter.force_flush(timeout_millis))


def use_provider(provider: TracerProvider, service: str) -> None:
    """Trace ``service`` with ``provider`` (``configure`` does; tests pass one with an in-memory exporter)."""
    global TRACER, _otel
    from opentelemetry import context, trace

    _otel = _otel or _Names(context, trace)
    _providers.append(provider)
    _tracers[service] = provider.get_tracer("shopstream")
    TRACER = TRACER or _tracers[service]


def tracer(service: str) -> Tracer | None:
    """The tracer of ``service`` in this process (the process's first one for a service not configured)."""
    return _tracers.get(service, TRACER)


def shutdown() -> None:
    """Export what is queued (for at most a few seconds each) and turn tracing off."""
    global TRACER, _bound
    providers = list(_providers)
    TRACER, _bound = None, 1 << 64
    _tracers.clear()
    _providers.clear()
    for provider in providers:
        provider.shutdown()


class _Names:
    """The OpenTelemetry modules and classes the hooks use, held once the SDK is loaded."""

    def __init__(self, context: Any, trace: Any) -> None:
        self.context, self.trace = context, trace
        self.SpanKind, self.Link, self.Status, self.StatusCode = (
            trace.SpanKind,
            trace.Link,
            trace.Status,
            trace.StatusCode,
        )
        self.SpanContext, self.TraceFlags, self.NonRecordingSpan = (
            trace.SpanContext,
            trace.TraceFlags,
            trace.NonRecordingSpan,
        )


# -- W3C traceparent ------------------------------------------------------------------------


def format_traceparent(span_context: SpanContext) -> str:
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{int(span_context.trace_flags):02x}"


def span_context_of(traceparent: str | bytes | None) -> SpanContext | None:
    """The remote span a ``traceparent`` names; None when off, absent or malformed (a trace starts anew)."""
    if TRACER is None or not traceparent:
        return None
    text = traceparent.decode("ascii", "replace") if isinstance(traceparent, bytes) else traceparent
    found = _TRACEPARENT.fullmatch(text.strip())
    if found is None:
        return None
    trace_id, span_id = int(found[1], 16), int(found[2], 16)
    if not trace_id or not span_id:
        return None
    remote: SpanContext = _otel.SpanContext(
        trace_id, span_id, is_remote=True, trace_flags=_otel.TraceFlags(int(found[3], 16))
    )
    return remote


def parent_context(traceparent: str | bytes | None) -> Context | None:
    """The context whose current span is the remote parent a ``traceparent`` names (None: a new trace)."""
    span_context = span_context_of(traceparent)
    if span_context is None:
        return None
    context: Context = _otel.trace.set_span_in_context(_otel.NonRecordingSpan(span_context))
    return context


def header_of(headers: Iterable[tuple[str, bytes | str | None]] | None) -> bytes | str | None:
    """A record's ``traceparent`` header; None when tracing is off (nothing is read then)."""
    if TRACER is None or not headers:
        return None
    for name, value in headers:
        if name == HEADER:
            return value
    return None


#: The unsampled ``traceparent`` a record is handled under (``passing``): no span is made for it.
_PASSING: ContextVar[str | None] = ContextVar("shopstream_unsampled_traceparent", default=None)


def unsampled(traceparent: str | bytes | None) -> str | None:
    """The ``traceparent`` as text when it is well formed and not sampled (its last two digits say so)."""
    if not traceparent:
        return None
    text = traceparent.decode("ascii", "replace") if isinstance(traceparent, bytes) else traceparent
    if len(text) != 55 or int(text[-2:], 16) & 1 or _TRACEPARENT.fullmatch(text) is None:
        return None
    return text


class passing:
    """Handle a record of an unsampled trace without a span: what it emits carries its ``traceparent`` on.

    A sampled-out parent would give every child span a sampled-out flag anyway (parent-based
    sampling); passing its context along unchanged costs a context variable, not the SDK's span.
    """

    __slots__ = ("token", "traceparent")

    def __init__(self, traceparent: str) -> None:
        self.traceparent = traceparent

    def __enter__(self) -> None:
        self.token = _PASSING.set(self.traceparent)

    def __exit__(self, *exc: object) -> None:
        _PASSING.reset(self.token)


def passed_traceparent() -> str | None:
    """The unsampled ``traceparent`` the current record or request passes on without a span, if any."""
    return _PASSING.get()


def current_traceparent() -> str | None:
    """The ``traceparent`` of the span current in this thread, if tracing is on and one is."""
    if TRACER is None:
        return None
    passed = _PASSING.get()
    if passed is not None:
        return passed
    span_context = _otel.trace.get_current_span().get_span_context()
    return format_traceparent(span_context) if span_context.is_valid else None


def current_trace_id() -> str | None:
    """The current trace's id (32 hex digits), for log records; None when off or outside a span."""
    if TRACER is None:
        return None
    passed = _PASSING.get()
    if passed is not None:
        return passed[3:35]
    span_context = _otel.trace.get_current_span().get_span_context()
    return f"{span_context.trace_id:032x}" if span_context.is_valid else None


def record_headers() -> list[tuple[str, bytes]]:
    """The headers a record produced now carries: the current span's context (none when off)."""
    traceparent = current_traceparent()
    return [(HEADER, traceparent.encode())] if traceparent else []


# -- spans ----------------------------------------------------------------------------------


def messaging_attributes(topic: str, operation: str, key: bytes | str | None = None) -> dict[str, Any]:
    """The OpenTelemetry messaging attributes of a Kafka span."""
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.operation.type": operation,
    }
    if key:
        attributes["messaging.kafka.message.key"] = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
    return attributes


def message_attributes(message_type: str, message_id: str, payload: object) -> dict[str, Any]:
    """What a span says of the message it handles: its type, its id and, when it has one, its order."""
    attributes: dict[str, Any] = {"shop.message.type": message_type, "messaging.message.id": message_id}
    order_id = getattr(payload, "order_id", None)
    if isinstance(order_id, str) and order_id:
        attributes["shop.order_id"] = order_id
    return attributes


def _tracer(given: Tracer | None) -> Tracer:
    chosen = given or TRACER
    if chosen is None:  # callers check ``TRACER`` first: off costs nothing
        raise RuntimeError("tracing is off: check topology.tracing.TRACER before opening a span")
    return chosen


class _Current:
    """Makes a span current and ends it on leaving (``use_span(span, end_on_exit=True)``, without its generator).

    An exception that escapes is recorded on the span and sets its status, as ``use_span`` does.
    """

    __slots__ = ("span", "token")

    def __init__(self, span: Span) -> None:
        self.span = span

    def __enter__(self) -> Span:
        self.token = _otel.context.attach(_otel.trace.set_span_in_context(self.span))
        return self.span

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> None:
        span = self.span
        try:
            _otel.context.detach(self.token)
            if isinstance(error, Exception) and span.is_recording():
                span.record_exception(error)
                span.set_status(_otel.Status(_otel.StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        finally:
            span.end()


def consuming(
    topic: str,
    traceparent: str | bytes | None,
    key: bytes | str | None = None,
    attributes: dict[str, Any] | None = None,
    tracer: Tracer | None = None,
) -> AbstractContextManager[Span]:
    """A ``<topic> process`` consumer span, current while the record is handled (child of its header's span)."""
    span = _tracer(tracer).start_span(
        f"{topic} process",
        context=parent_context(traceparent),
        kind=_otel.SpanKind.CONSUMER,
        attributes={**messaging_attributes(topic, "process", key), **(attributes or {})},
    )
    return _Current(span)


def producing(
    topic: str, key: bytes | str | None = None, attributes: dict[str, Any] | None = None, tracer: Tracer | None = None
) -> AbstractContextManager[Span]:
    """A ``<topic> publish`` producer span around one send; ``record_headers()`` inside it name it."""
    passed = _PASSING.get()
    if passed is not None:  # an unsampled trace: no span, the record carries the passed context
        return nullcontext(_otel.NonRecordingSpan(span_context_of(passed)))
    span = _tracer(tracer).start_span(
        f"{topic} publish",
        kind=_otel.SpanKind.PRODUCER,
        attributes={**messaging_attributes(topic, "publish", key), **(attributes or {})},
    )
    return _Current(span)


def start_span(
    name: str,
    kind: str = "INTERNAL",
    parent: SpanContext | None = None,
    links: Sequence[Any] = (),
    attributes: dict[str, Any] | None = None,
    start_time: int | None = None,
    tracer: Tracer | None = None,
) -> Span:
    """A span the caller ends: a child of ``parent``, or of the current span when None."""
    passed = _PASSING.get() if parent is None else None
    if passed is not None:  # inside an unsampled trace: the span would not be recorded
        unrecorded: Span = _otel.NonRecordingSpan(span_context_of(passed))
        return unrecorded
    context = _otel.trace.set_span_in_context(_otel.NonRecordingSpan(parent)) if parent is not None else None
    return _tracer(tracer).start_span(
        name,
        context=context,
        kind=getattr(_otel.SpanKind, kind),
        links=links,
        attributes=attributes,
        start_time=start_time,
    )


def server_span(name: str, traceparent: str | None, attributes: dict[str, Any]) -> tuple[Span, object]:
    """A server span for one request, made current; pass the token to ``end_current``.

    A request whose trace is not sampled (its ``traceparent`` says so, or the ratio says so for a
    new trace) gets no SDK span: its context passes as ``passing`` does in the flows, and the
    span returned records nothing, for a few microseconds instead of the SDK's ~60.
    """
    passed = unsampled(traceparent)
    trace_id = 0
    if passed is None and (not traceparent or _TRACEPARENT.fullmatch(traceparent.strip()) is None):
        trace_id = _random.getrandbits(128) or 1  # a new trace: decided here, as the sampler would
        if (trace_id & _LOW_64) >= _bound:
            passed = f"00-{trace_id:032x}-{_random.getrandbits(64) or 1:016x}-00"
    if passed is not None:
        context = _otel.SpanContext(
            int(passed[3:35], 16), int(passed[36:52], 16), is_remote=False, trace_flags=_otel.TraceFlags(0)
        )
        unrecorded: Span = _otel.NonRecordingSpan(context)
        return unrecorded, _Passed(_PASSING.set(passed))
    primed = _PRIMED.set(trace_id)
    try:
        span = _tracer(None).start_span(
            name, context=parent_context(traceparent), kind=_otel.SpanKind.SERVER, attributes=attributes
        )
    finally:
        _PRIMED.reset(primed)
    token = _otel.context.attach(_otel.trace.set_span_in_context(span))
    return span, token


class _Passed:
    """The token of a request handled without a span (``server_span``)."""

    __slots__ = ("token",)

    def __init__(self, token: Any) -> None:
        self.token = token


def end_current(span: Span, token: object) -> None:
    """End a span made current by ``server_span`` and restore the context before it."""
    if isinstance(token, _Passed):
        _PASSING.reset(token.token)
        return
    try:
        span.end()
    finally:
        _otel.context.detach(token)


def fail(span: Span, reason: str) -> None:
    """Mark a span as failed with ``reason`` (an exception that escapes a span is recorded by itself)."""
    span.set_status(_otel.Status(_otel.StatusCode.ERROR, reason))


def links_to(span_contexts: Iterable[SpanContext], limit: int = 128) -> list[Any]:
    """Links to at most ``limit`` distinct spans (what a batch span wrote)."""
    seen: dict[tuple[int, int], SpanContext] = {}
    for span_context in span_contexts:
        seen.setdefault((span_context.trace_id, span_context.span_id), span_context)
        if len(seen) >= limit:
            break
    return [_otel.Link(span_context) for span_context in seen.values()]
