"""A small trace backend for the local stack: OTLP/HTTP in, Jaeger's query API out, traces kept in memory.

``python -m ops.tracestore --host H --otlp-port P --query-port Q --max-traces N``

It takes what every OpenTelemetry SDK exports (``POST /v1/traces``, protobuf or JSON as the
OTLP/HTTP specification puts it), keeps the newest ``N`` traces in memory (the oldest trace goes
first; a restart starts empty, as Jaeger's memory storage does), and answers the read
side of Jaeger's HTTP API that ``shopstream trace`` and the tests use, in Jaeger's JSON:
``/api/services``, ``/api/traces/{trace_id}``, ``/api/traces?service=S[&operation=O][&tags={...}][&limit=N]``.
It is the stack's default because Jaeger takes minutes to build from its Go module (``ops/jaeger``,
``SHOP_TRACES_BACKEND=jaeger``); production points ``SHOP_OTLP_ENDPOINT`` at a real backend.
"""

from __future__ import annotations

import argparse
import base64
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from google.protobuf.json_format import Parse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
MAX_BODY = 16 * 1024 * 1024


def _value(any_value: Any) -> tuple[str, Any]:
    """An OTLP AnyValue as Jaeger's (type, value)."""
    which = any_value.WhichOneof("value")
    if which == "bool_value":
        return "bool", any_value.bool_value
    if which == "int_value":
        return "int64", any_value.int_value
    if which == "double_value":
        return "float64", any_value.double_value
    if which == "string_value":
        return "string", any_value.string_value
    if which == "bytes_value":
        return "binary", base64.b64encode(any_value.bytes_value).decode()
    if which == "array_value":
        return "string", json.dumps([_value(v)[1] for v in any_value.array_value.values])
    return "string", ""


def _tags(attributes: Iterable[Any]) -> list[dict[str, Any]]:
    tags = []
    for attribute in attributes:
        kind, value = _value(attribute.value)
        tags.append({"key": attribute.key, "type": kind, "value": value})
    return tags


class Store:
    """The newest ``max_traces`` traces, each as Jaeger's JSON shows one."""

    def __init__(self, max_traces: int) -> None:
        self.max_traces = max_traces
        self.traces: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.lock = threading.Lock()

    def add(self, request: ExportTraceServiceRequest) -> int:
        """Keep every span of an export request; how many."""
        count = 0
        with self.lock:
            for resource_spans in request.resource_spans:
                resource = _tags(resource_spans.resource.attributes)
                service = next((t["value"] for t in resource if t["key"] == "service.name"), "unknown")
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self._keep(span, service, resource)
                        count += 1
            while len(self.traces) > self.max_traces:
                self.traces.popitem(last=False)
        return count

    def _keep(self, span: Any, service: str, resource: list[dict[str, Any]]) -> None:
        trace_id = span.trace_id.hex()
        trace = self.traces.get(trace_id)
        if trace is None:
            trace = self.traces[trace_id] = {"traceID": trace_id, "spans": [], "processes": {}, "warnings": None}
        self.traces.move_to_end(trace_id)
        process_id = next((k for k, p in trace["processes"].items() if p["serviceName"] == service), None)
        if process_id is None:
            process_id = f"p{len(trace['processes']) + 1}"
            trace["processes"][process_id] = {"serviceName": service, "tags": resource}
        references = []
        if span.parent_span_id:
            references.append({"refType": "CHILD_OF", "traceID": trace_id, "spanID": span.parent_span_id.hex()})
        for link in span.links:
            references.append({"refType": "FOLLOWS_FROM", "traceID": link.trace_id.hex(), "spanID": link.span_id.hex()})
        tags = _tags(span.attributes)
        tags.append({"key": "span.kind", "type": "string", "value": KINDS.get(span.kind, "unspecified")})
        if span.status.code == 2:
            tags += [
                {"key": "error", "type": "bool", "value": True},
                {"key": "otel.status_code", "type": "string", "value": "ERROR"},
                {"key": "otel.status_description", "type": "string", "value": span.status.message},
            ]
        trace["spans"].append(
            {
                "traceID": trace_id,
                "spanID": span.span_id.hex(),
                "operationName": span.name,
                "references": references,
                "startTime": span.start_time_unix_nano // 1000,
                "duration": max(0, span.end_time_unix_nano - span.start_time_unix_nano) // 1000,
                "tags": tags,
                "logs": [],
                "processID": process_id,
                "warnings": None,
            }
        )

    def services(self) -> list[str]:
        with self.lock:
            return sorted({p["serviceName"] for t in self.traces.values() for p in t["processes"].values()})

    def get(self, trace_id: str) -> dict[str, Any] | None:
        with self.lock:
            trace = self.traces.get(trace_id.lower())
            return json.loads(json.dumps(trace)) if trace is not None else None

    def find(self, service: str, operation: str | None, tags: dict[str, str], limit: int) -> list[dict[str, Any]]:
        """The newest traces with a span of ``service`` (named ``operation``) carrying every tag given."""
        found = []
        with self.lock:
            for trace in reversed(self.traces.values()):
                processes = {k for k, p in trace["processes"].items() if p["serviceName"] == service}
                for span in trace["spans"]:
                    if span["processID"] not in processes or (operation and span["operationName"] != operation):
                        continue
                    held = {t["key"]: str(t["value"]) for t in span["tags"]}
                    if all(held.get(k) == str(v) for k, v in tags.items()):
                        found.append(json.loads(json.dumps(trace)))
                        break
                if len(found) >= limit:
                    break
        return found


def handler(store: Store) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: one line per request would be most of the log."""

        def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, document: object) -> None:
            self._answer(status, json.dumps(document).encode())

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/v1/traces":
                self._json(404, {"error": "no such path"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._json(413, {"error": "too large"})
                return
            body = self.rfile.read(length)
            request = ExportTraceServiceRequest()
            try:
                if (self.headers.get("Content-Type") or "").startswith("application/json"):
                    Parse(body.decode(), request)
                else:
                    request.ParseFromString(body)
            except Exception as err:  # noqa: BLE001 - a body that is no export request is the client's problem
                self._json(400, {"error": f"not an OTLP export request: {err}"})
                return
            store.add(request)
            self._answer(200, ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf")

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if url.path == "/api/services":
                services = store.services()
                self._json(200, {"data": services, "total": len(services)})
            elif url.path.startswith("/api/traces/"):
                trace = store.get(url.path.rsplit("/", 1)[-1])
                if trace is None:
                    self._json(404, {"data": None, "errors": [{"code": 404, "msg": "trace not found"}]})
                else:
                    self._json(200, {"data": [trace]})
            elif url.path == "/api/traces":
                if "service" not in query:
                    self._json(400, {"data": None, "errors": [{"code": 400, "msg": "parameter 'service' is required"}]})
                    return
                try:
                    tags = json.loads(query.get("tags") or "{}")
                    limit = int(query.get("limit") or 20)
                except ValueError as err:
                    self._json(400, {"data": None, "errors": [{"code": 400, "msg": str(err)}]})
                    return
                self._json(200, {"data": store.find(query["service"], query.get("operation"), tags, limit)})
            else:
                self._json(404, {"error": "no such path"})

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--otlp-port", type=int, required=True)
    parser.add_argument("--query-port", type=int, required=True)
    parser.add_argument("--max-traces", type=int, default=20_000)
    args = parser.parse_args()
    store = Store(args.max_traces)
    otlp = ThreadingHTTPServer((args.host, args.otlp_port), handler(store))
    query = ThreadingHTTPServer((args.host, args.query_port), handler(store))
    threading.Thread(target=otlp.serve_forever, name="otlp", daemon=True).start()
    print(f"traces: OTLP/HTTP on {args.host}:{args.otlp_port}, query API on {args.host}:{args.query_port}", flush=True)
    query.serve_forever()


if __name__ == "__main__":
    main()
