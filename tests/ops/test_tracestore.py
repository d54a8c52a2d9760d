"""The local trace backend (ops/tracestore.py): the SDK's real OTLP exporter in, Jaeger's query API out."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from ops.tracestore import Store, handler


@pytest.fixture
def backend() -> Iterator[tuple[str, Store]]:
    store = Store(max_traces=3)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(store))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", store
    server.shutdown()
    server.server_close()


def provider(url: str, service: str) -> TracerProvider:
    made = TracerProvider(resource=Resource.create({"service.name": service}))
    made.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces", timeout=5)))
    return made


def test_spans_exported_by_otlp_come_back_as_jaeger_shows_them(backend: tuple[str, Store]) -> None:
    url, _ = backend
    ingress, orders = provider(url, "ingress").get_tracer("t"), provider(url, "orders").get_tracer("t")
    with (
        ingress.start_as_current_span("POST /v1/orders", kind=SpanKind.SERVER) as root,
        orders.start_as_current_span("shop.orders.commands process", kind=SpanKind.CONSUMER) as child,
    ):
        child.set_attribute("shop.order_id", "o1")
        child.set_status(Status(StatusCode.ERROR, "boom"))
    with orders.start_as_current_span("postgres write", links=[Link(child.get_span_context())]) as batch:
        pass
    trace_id = f"{root.get_span_context().trace_id:032x}"
    with httpx.Client(base_url=url) as api:
        assert api.get("/api/services").json()["data"] == ["ingress", "orders"]
        [trace] = api.get(f"/api/traces/{trace_id}").json()["data"]
        spans = {s["operationName"]: s for s in trace["spans"]}
        process = spans["shop.orders.commands process"]
        assert process["references"] == [
            {"refType": "CHILD_OF", "traceID": trace_id, "spanID": f"{root.get_span_context().span_id:016x}"}
        ]
        assert trace["processes"][process["processID"]]["serviceName"] == "orders"
        tags = {t["key"]: t["value"] for t in process["tags"]}
        assert tags["shop.order_id"] == "o1" and tags["span.kind"] == "consumer" and tags["error"] is True
        assert tags["otel.status_description"] == "boom"
        assert process["duration"] >= 0 and process["startTime"] >= spans["POST /v1/orders"]["startTime"]
        found = api.get("/api/traces", params={"service": "orders", "tags": json.dumps({"shop.order_id": "o1"})})
        assert [t["traceID"] for t in found.json()["data"]] == [trace_id]
        batch_id = f"{batch.get_span_context().trace_id:032x}"
        [other] = api.get(f"/api/traces/{batch_id}").json()["data"]
        assert other["spans"][0]["references"] == [
            {"refType": "FOLLOWS_FROM", "traceID": trace_id, "spanID": f"{child.get_span_context().span_id:016x}"}
        ]
        assert api.get(f"/api/traces/{'0' * 32}").status_code == 404
        assert api.get("/api/traces").status_code == 400, "the service is required, as Jaeger says"


def test_it_keeps_the_newest_traces_only_and_refuses_what_is_no_export(backend: tuple[str, Store]) -> None:
    url, store = backend
    tracer = provider(url, "ingress").get_tracer("t")
    ids = []
    for n in range(5):
        with tracer.start_as_current_span(f"request {n}") as span:
            ids.append(f"{span.get_span_context().trace_id:032x}")
    assert list(store.traces) == ids[2:], "the oldest two went"
    refused = httpx.post(f"{url}/v1/traces", content=b"\x00garbage", headers={"Content-Type": "application/x-protobuf"})
    assert refused.status_code == 400 and "not an OTLP export request" in refused.json()["error"]
