"""Traces without a backend: what off costs, and on, the spans each hop makes and the context records carry.

On, spans go to an in-memory exporter (``topology.tracing.use_provider``), so the parents,
links and attributes of the ingress's, the flows' and the sinks' spans are read back exactly.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import falcon
import falcon.testing
import pytest
from bytewax.connectors.kafka import KafkaSinkMessage, KafkaSourceMessage
from bytewax.testing import TestingSink, TestingSource, run_main
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from quixstreams.sinks import SinkBatch

from flows import tracing as flow_tracing
from flows.inventory.flow import build_flow as inventory_flow
from flows.notifications.fakes import FakeChannel
from flows.orders.flow import build_flow as orders_flow
from flows.payments.fakes import FakeGateway
from flows.payments.flow import build_flow as payments_flow
from ingress import tracing as ingress_tracing
from sinks import tracing as sink_tracing
from sinks.base import Record
from tests.support.dataflows import SETTINGS, now
from topology import tracing
from topology.envelope import Producer, decode, encode, envelop
from topology.messages import AdjustStock, AuthorizePayment, Message, Money, PlaceOrderV2, ReserveStock
from topology.messages import OrderItem as Line
from topology.settings import PROJECT_ROOT, Settings
from topology.topics import INVENTORY_COMMANDS, ORDER_COMMANDS, ORDER_EVENTS, ORDER_INBOX, PAYMENT_COMMANDS, Topic

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
SAMPLED = f"00-{TRACE}-{PARENT}-01"
UNSAMPLED = f"00-{'1' * 32}-{'2' * 16}-00"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for the services the tests name, every span kept in memory."""
    exporter = InMemorySpanExporter()
    for service in ("ingress", "orders", "inventory", "payments", "notifications", "sink-postgres"):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracing.use_provider(provider, service)
    yield exporter
    tracing.shutdown()


def traced_record(topic: Topic, key: str, message: Message, offset: int, traceparent: str | None) -> KafkaSourceMessage:
    envelope = envelop(message, producer=Producer("user", "u1"), occurred_at=now())
    headers = [(tracing.HEADER, traceparent.encode())] if traceparent else []
    return KafkaSourceMessage(
        key=key.encode(), value=encode(envelope), topic=topic.name, partition=0, offset=offset, headers=headers
    )


def header(record: KafkaSinkMessage) -> str | None:
    found = dict(record.headers).get(tracing.HEADER)
    return found.decode() if found else None


def ids(span: ReadableSpan) -> str:
    return tracing.format_traceparent(span.get_span_context())


def parent_span_id(span: ReadableSpan) -> str | None:
    return f"{span.parent.span_id:016x}" if span.parent else None


# -- off ----------------------------------------------------------------------------------


def test_off_every_hook_is_the_thing_it_was_given_and_reads_no_header() -> None:
    assert tracing.TRACER is None
    step, logic = (lambda state, item: (state, [])), (lambda resume: None)
    assert flow_tracing.traced_step(step, "inventory") is step
    assert flow_tracing.traced_logic(logic, "orders") is logic  # type: ignore[arg-type]
    assert flow_tracing.traced_map(str, "orders") is str  # type: ignore[arg-type]
    channels: dict[str, Any] = {"email": FakeChannel()}
    assert flow_tracing.traced_channels(channels, "notifications") is channels
    gateway = FakeGateway()
    assert flow_tracing.traced_gateway(gateway, "payments") is gateway
    assert ingress_tracing.middleware() == []
    assert sink_tracing.batch("postgres", [], []) is sink_tracing.batch("redis", [], []), "one shared no-op"
    assert tracing.header_of([(tracing.HEADER, SAMPLED.encode())]) is None
    assert tracing.current_traceparent() is None and tracing.record_headers() == []


def test_off_no_process_imports_the_sdk() -> None:
    """Every flow built, the ingress app made and a sink made, with no endpoint: the tracing SDK never loaded.

    (Other libraries import OpenTelemetry's API, and redis its metrics SDK, when installed; neither traces.)
    """
    code = """
import importlib, json, sys
from unittest import mock
from flows.run import FLOWS
from topology.settings import Settings
from topology import tracing
settings = Settings()
for name in FLOWS:
    tracing.configure(settings, name)
    importlib.import_module(f"flows.{name}.flow").build_flow(settings=settings)
from ingress.app import Ports, create_app
create_app(settings, Ports(*(mock.MagicMock() for _ in range(6))))
from sinks.app import SINKS
tracing.configure(settings, "sink-postgres")
SINKS["postgres"](settings)
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk.trace", "opentelemetry.exporter")))))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, env={}, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == []


# -- W3C traceparent -------------------------------------------------------------------------


def test_a_traceparent_is_read_strictly_and_written_back_the_same(spans: InMemorySpanExporter) -> None:
    context = tracing.span_context_of(SAMPLED)
    assert context is not None and context.is_remote and context.trace_flags.sampled
    assert tracing.format_traceparent(context) == SAMPLED
    assert tracing.span_context_of(SAMPLED.encode()) == context
    for bad in ("", "garbage", f"01-{TRACE}-{PARENT}-01", f"00-{'0' * 32}-{PARENT}-01", f"00-{TRACE}-{'0' * 16}-01"):
        assert tracing.span_context_of(bad) is None, bad
    assert tracing.header_of([("other", b"x"), (tracing.HEADER, b"tp")]) == b"tp"


# -- the ingress ---------------------------------------------------------------------------


class Hello:
    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.media = {"traceparent": tracing.current_traceparent()}

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        raise falcon.HTTPInternalServerError()


def test_a_request_is_a_server_span_child_of_its_traceparent_and_the_answer_names_it(
    spans: InMemorySpanExporter,
) -> None:
    app = falcon.App(middleware=ingress_tracing.middleware())
    app.add_route("/hello/{name}", Hello())
    client = falcon.testing.TestClient(app)
    answer = client.simulate_get("/hello/ann", headers={"traceparent": SAMPLED})
    [span] = spans.get_finished_spans()
    assert span.kind is SpanKind.SERVER and span.name == "GET /hello/{name}"
    assert span.attributes is not None and span.attributes["http.route"] == "/hello/{name}"
    assert span.attributes["http.response.status_code"] == 200
    assert parent_span_id(span) == PARENT and f"{span.context.trace_id:032x}" == TRACE
    assert answer.headers["traceparent"] == ids(span) == answer.json["traceparent"], "current while handled"
    fresh = client.simulate_post("/hello/bob")
    second = spans.get_finished_spans()[-1]
    assert second.parent is None and fresh.headers["traceparent"] == ids(second), "no traceparent: a new trace"
    assert second.status.status_code is StatusCode.ERROR


def test_a_publish_span_is_what_the_record_headers_name(spans: InMemorySpanExporter) -> None:
    with tracing.producing("shop.orders.commands", "o1", {"shop.order_id": "o1"}):
        headers = tracing.record_headers()
    [span] = spans.get_finished_spans()
    assert span.kind is SpanKind.PRODUCER and span.name == "shop.orders.commands publish"
    assert span.attributes is not None and span.attributes["messaging.system"] == "kafka"
    assert span.attributes["messaging.destination.name"] == "shop.orders.commands"
    assert headers == [(tracing.HEADER, ids(span).encode())]


# -- the flows -------------------------------------------------------------------------------


def test_each_record_a_flow_handles_is_a_process_span_and_what_it_emits_carries_that_span(
    spans: InMemorySpanExporter,
) -> None:
    items = [
        traced_record(INVENTORY_COMMANDS, "sku-1", AdjustStock(sku="sku-1", delta=3, reason="delivery"), 0, SAMPLED),
        traced_record(INVENTORY_COMMANDS, "sku-1", ReserveStock(sku="sku-1", order_id="o1", quantity=1), 1, None),
    ]
    out: list[KafkaSinkMessage] = []
    run_main(inventory_flow(TestingSource(items), TestingSink(out), SETTINGS))
    process = [s for s in spans.get_finished_spans() if s.name == "shop.inventory.commands process"]
    assert len(process) == 2
    adjust, reserve = sorted(process, key=lambda s: s.attributes["messaging.kafka.offset"])  # type: ignore[index]
    assert adjust.kind is SpanKind.CONSUMER and parent_span_id(adjust) == PARENT
    assert f"{adjust.context.trace_id:032x}" == TRACE
    assert reserve.parent is None, "a record without a traceparent starts a trace"
    assert reserve.attributes is not None and reserve.attributes["shop.order_id"] == "o1"
    assert reserve.attributes["messaging.system"] == "kafka"
    assert reserve.attributes["shop.message.type"] == "ReserveStock"
    by_cause = {decode(r.value).causation_id: header(r) for r in out}
    assert by_cause[decode(items[0].value).id] == ids(adjust)
    assert by_cause[decode(items[1].value).id] == ids(reserve)
    assert all(decode(r.value).traceparent is None for r in out), "the envelope's traceparent is inherited, not the hop"


def test_an_order_command_goes_to_the_inbox_and_through_the_saga_each_hop_a_child_of_the_last(
    spans: InMemorySpanExporter,
) -> None:
    place = PlaceOrderV2(order_id="o1", customer_id="u1", lines=[Line(sku="a", quantity=1)], payment_token="tok")
    first: list[KafkaSinkMessage] = []
    run_main(
        orders_flow(
            TestingSource([traced_record(ORDER_COMMANDS, "o1", place, 0, SAMPLED)]), TestingSink(first), SETTINGS
        )
    )
    [queued] = [r for r in first if r.topic == ORDER_INBOX.name]
    [forward] = [s for s in spans.get_finished_spans() if s.name == "shop.orders.commands process"]
    assert parent_span_id(forward) == PARENT and header(queued) == ids(forward)
    inbox = KafkaSourceMessage(
        key=b"o1", value=queued.value, topic=ORDER_INBOX.name, partition=0, offset=0, headers=queued.headers
    )
    second: list[KafkaSinkMessage] = []
    run_main(orders_flow(TestingSource([inbox]), TestingSink(second), SETTINGS))
    [saga] = [s for s in spans.get_finished_spans() if s.name == "shop.orders.inbox process"]
    assert parent_span_id(saga) == f"{forward.context.span_id:016x}"
    assert {s.context.trace_id for s in (forward, saga)} == {int(TRACE, 16)}
    assert second and {header(r) for r in second} == {ids(saga)}, (
        "the reservations and OrderPlaced name the saga's span"
    )
    assert INVENTORY_COMMANDS.name in {r.topic for r in second}


def test_a_gateway_call_is_a_client_span_under_the_command_and_its_answer_carries_the_command_span(
    spans: InMemorySpanExporter,
) -> None:
    authorize = AuthorizePayment(order_id="o1", amount=Money(900, "EUR"), payment_token="tok_visa")
    items = [traced_record(PAYMENT_COMMANDS, "o1", authorize, 0, SAMPLED)]
    out: list[KafkaSinkMessage] = []
    gateway = flow_tracing.TracedGateway(FakeGateway(), "payments")
    run_main(payments_flow(TestingSource(items), TestingSink(out), SETTINGS, gateway=gateway))
    finished = spans.get_finished_spans()
    [process] = [s for s in finished if s.name == "shop.payments.commands process"]
    [call] = [s for s in finished if s.name == "payment_gateway authorize"]
    assert call.kind is SpanKind.CLIENT and parent_span_id(call) == f"{process.context.span_id:016x}"
    assert call.attributes is not None and call.attributes["shop.gateway.outcome"] == "approved"
    assert out and {header(r) for r in out} == {ids(process)}, "settled after the step: still the command's span"


def test_a_delivery_is_a_client_span_and_a_refusal_marks_it_failed(spans: InMemorySpanExporter) -> None:
    fake = FakeChannel(refuse=frozenset({"+15550001111"}))
    channels = flow_tracing.traced_channels({"email": fake, "sms": fake}, "notifications")
    channels["email"].deliver("n1", "ann@example.com", "hi", "body")
    channels["sms"].deliver("n2", "+15550001111", "hi", "body")
    sent, refused = spans.get_finished_spans()
    assert (sent.name, sent.kind, sent.status.status_code) == ("smtp send", SpanKind.CLIENT, StatusCode.UNSET)
    assert (refused.name, refused.status.status_code) == ("sms send", StatusCode.ERROR)


# -- the sinks -------------------------------------------------------------------------------


def sink_batch(records: list[tuple[str | None, Message]]) -> tuple[SinkBatch, list[Record]]:
    batch = SinkBatch(ORDER_EVENTS.name, 0)
    for offset, (traceparent, message) in enumerate(records):
        value = encode(envelop(message, producer=Producer("service", "orders"), occurred_at=now()))
        headers = [(tracing.HEADER, traceparent.encode())] if traceparent else []
        batch.append(value=value, key=b"o1", timestamp=0, headers=headers, offset=offset)
    return batch, [Record(decode(item.value), item) for item in batch]


def test_a_sink_batch_links_what_it_wrote_and_each_sampled_record_ends_its_trace_in_the_store(
    spans: InMemorySpanExporter,
) -> None:
    adjust = AdjustStock(sku="a", delta=1)
    batch, records = sink_batch([(SAMPLED, adjust), (UNSAMPLED, adjust), (None, adjust)])
    with sink_tracing.batch("postgres", [batch], records):
        pass
    finished = spans.get_finished_spans()
    [write] = [s for s in finished if s.name == "postgres write"]
    [store] = [s for s in finished if s.name.endswith(" store")]
    assert {f"{link.context.span_id:016x}" for link in write.links} == {PARENT, "2" * 16}
    assert write.attributes is not None and write.attributes["messaging.batch.message_count"] == 3
    assert store.name == f"{ORDER_EVENTS.name} store" and parent_span_id(store) == PARENT
    assert [link.context.span_id for link in store.links] == [write.context.span_id]


def test_a_failed_write_fails_its_spans_and_is_raised_as_it_was(spans: InMemorySpanExporter) -> None:
    batch, records = sink_batch([(SAMPLED, AdjustStock(sku="a", delta=1))])
    with pytest.raises(ConnectionError), sink_tracing.batch("postgres", [batch], records):
        raise ConnectionError("store away")
    assert {s.status.status_code for s in spans.get_finished_spans()} == {StatusCode.ERROR}


# -- a backend that is down ----------------------------------------------------------------


def test_a_backend_that_is_down_costs_the_spans_only_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    """Spans to a closed port: every span is made and ended at once, the queue drops past its bound, one warning."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    settings = Settings(otlp_endpoint=f"http://127.0.0.1:{closed}", trace_queue_size=16)
    caplog.set_level(logging.INFO, logger="topology.tracing")
    assert tracing.configure(settings, "ingress")
    try:
        for n in range(5000):  # far past the queue's bound: dropped, never waited for
            with tracing.producing("shop.orders.commands", str(n)):
                assert tracing.record_headers()
        deadline = time.monotonic() + 30
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        tracing.shutdown()
    told = [r.getMessage() for r in caplog.records if r.name == "topology.tracing"]
    assert len(told) == 1 and f"127.0.0.1:{closed}/v1/traces failed" in told[0], told
    assert tracing.TRACER is None


def test_a_record_of_an_unsampled_trace_makes_no_span_and_passes_its_context_on(spans: InMemorySpanExporter) -> None:
    authorize = AuthorizePayment(order_id="o1", amount=Money(900, "EUR"), payment_token="tok_visa")
    out: list[KafkaSinkMessage] = []
    gateway = flow_tracing.TracedGateway(FakeGateway(), "payments")
    items = [traced_record(PAYMENT_COMMANDS, "o1", authorize, 0, UNSAMPLED)]
    run_main(payments_flow(TestingSource(items), TestingSink(out), SETTINGS, gateway=gateway))
    assert spans.get_finished_spans() == (), "neither the step's span nor the gateway call's is made"
    assert out and {header(r) for r in out} == {UNSAMPLED}, "the trace (and its flag) goes on downstream"
    assert tracing.unsampled(SAMPLED) is None and tracing.unsampled("00-garbage-00") is None
