"""Traces on the whole system: an order placed over HTTP is one trace in the stack's Jaeger, ingress to stores.

The session's live system (``tests/support/live.py``: ``shopstream run``, every Procfile
process) runs with tracing on at a sample ratio of 1.0, exporting to the shared stack's trace
backend (``ops/stack/traces.py``). A customer registers (so the confirmation goes by email),
orders with a ``traceparent`` of the test's own, and the trace the answer names comes back
from Jaeger's query API: every span's parent is in the trace (the root's is the test's), the
path from the request to the email passes through orders, inventory and payments, each sink
ends it in its store, and a sink's batch span links the records it wrote. Then ``shopstream
trace ORDER_ID --json`` tells the order's story with its commands, events and those spans.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.live import LiveSystem, eventually
from tests.support.processes import BIN
from topology.settings import PROJECT_ROOT

pytestmark = pytest.mark.stack

#: The hops an order's confirmation email passes through, in order.
PATH = ["ingress", "orders", "inventory", "orders", "payments", "orders", "notifications"]
SINKS = ("sink-postgres", "sink-redis", "sink-search", "sink-mongo")


def jaeger(live: LiveSystem) -> httpx.Client:
    return httpx.Client(base_url=live.settings.traces_url, timeout=10)


def fetch(live: LiveSystem, trace_id: str, ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The trace once ``ready`` says it holds what the test waits for (spans arrive batch by batch)."""
    with jaeger(live) as client:

        def answered() -> dict[str, Any] | None:
            reply = client.get(f"/api/traces/{trace_id}")
            data = reply.json().get("data") if reply.status_code == 200 else None
            return data[0] if data and ready(data[0]) else None

        return dict(eventually(answered, 60, f"trace {trace_id} never held what was waited for"))


def services(trace: dict[str, Any]) -> dict[str, str]:
    """span id -> the service that made it."""
    processes = trace["processes"]
    return {span["spanID"]: processes[span["processID"]]["serviceName"] for span in trace["spans"]}


def parents(trace: dict[str, Any]) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for span in trace["spans"]:
        refs = [r["spanID"] for r in span.get("references", []) if r["refType"] == "CHILD_OF"]
        assert len(refs) <= 1, span
        found[span["spanID"]] = refs[0] if refs else None
    return found


def path_to(trace: dict[str, Any], span_id: str) -> list[str]:
    """The services from the root down to ``span_id``, repeats of one service in a row told once."""
    of, parent, by = services(trace), parents(trace), []
    current: str | None = span_id
    while current is not None and current in of:
        if not by or by[-1] != of[current]:
            by.append(of[current])
        current = parent[current]
    return by[::-1]


def named(trace: dict[str, Any], operation: str) -> list[dict[str, Any]]:
    return [s for s in trace["spans"] if s["operationName"] == operation]


def test_an_order_placed_over_http_is_one_trace_from_the_ingress_to_the_stores(live_system: LiveSystem) -> None:
    live = live_system
    assert live.settings.otlp_endpoint and live.settings.trace_sample_ratio == 1.0, "the live system traces everything"
    email = f"trace-{secrets.token_hex(4)}@example.com"
    with httpx.Client(base_url=live.api, timeout=10) as api:
        registered = api.post("/v1/users", json={"email": email, "name": "Tess", "password": "correct horse"})
        assert registered.status_code == 202, registered.text
        tess = live.bearer(registered.json()["user_id"], "customer")
        eventually(lambda: api.get("/v1/users/me", headers=tess).status_code == 200, 60, "the profile never arrived")
        caller_trace, caller_span = secrets.token_hex(16), secrets.token_hex(8)
        order = {"lines": [{"sku": "live-mug", "quantity": 1}], "payment_token": "tok_visa"}
        placed = api.post(
            "/v1/orders", json=order, headers={**tess, "traceparent": f"00-{caller_trace}-{caller_span}-01"}
        )
    assert placed.status_code == 202, placed.text
    order_id = placed.json()["order_id"]
    _, trace_id, server_span, _ = placed.headers["traceparent"].split("-")
    assert trace_id == caller_trace, "the request's trace goes on: W3C traceparent in and out"
    assert live.settle(tess, order_id) == "confirmed"

    def complete(trace: dict[str, Any]) -> bool:
        of = set(services(trace).values())
        return bool(named(trace, "smtp send")) and set(SINKS) <= of

    trace = fetch(live, trace_id, complete)
    parent = parents(trace)
    spans = {s["spanID"]: s for s in trace["spans"]}
    root = spans[server_span]
    assert root["operationName"] == "POST /v1/orders" and services(trace)[server_span] == "ingress"
    assert parent[server_span] == caller_span, "the server span is the caller's span's child"
    orphans = [s["operationName"] for s in trace["spans"] if parent[s["spanID"]] not in (caller_span, *spans)]
    assert orphans == [], "every other span's parent is in the trace"
    assert {s["traceID"] for s in trace["spans"]} == {trace_id}

    [email_span] = named(trace, "smtp send")
    assert path_to(trace, email_span["spanID"]) == PATH, "request -> saga -> stock -> saga -> card -> saga -> email"
    assert any(s["operationName"] == "payment_gateway authorize" for s in trace["spans"])
    kinds = {s["operationName"]: {t["key"]: t["value"] for t in s["tags"]} for s in trace["spans"]}
    process = kinds[f"{live.settings.topic_prefix}shop.inventory.commands process"]
    assert process["messaging.system"] == "kafka" and process["shop.order_id"] == order_id
    assert process["span.kind"] == "consumer"

    of = services(trace)
    stored = [s for s in trace["spans"] if s["operationName"].endswith(" store")]
    assert {of[s["spanID"]] for s in stored} == set(SINKS), "each sink ends the order's trace in its store"
    assert all(of[parent[s["spanID"]] or ""] in ("orders", "inventory", "payments", "notifications") for s in stored)
    batch_ref = next(r for r in stored[0]["references"] if r["refType"] == "FOLLOWS_FROM")
    batch_id = batch_ref["spanID"]
    batch_trace = fetch(live, batch_ref["traceID"], lambda t: any(s["spanID"] == batch_id for s in t["spans"]))
    [batch] = [s for s in batch_trace["spans"] if s["spanID"] == batch_id]
    assert batch["operationName"].endswith(" write")
    linked = {(r["traceID"], r["spanID"]) for r in batch["references"] if r["refType"] == "FOLLOWS_FROM"}
    assert (trace_id, parent[stored[0]["spanID"]]) in linked, "the batch span links the record it wrote"

    story = subprocess.run(
        [str(BIN / "shopstream"), "trace", order_id, "--json"],
        env={**os.environ, **live.settings.to_env()},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert story.returncode == 0, story.stderr[-3000:]
    rows = [json.loads(line) for line in story.stdout.splitlines()]
    told = [row for row in rows if row["kind"] != "missing"]
    assert [row["at"] for row in told] == sorted(row["at"] for row in told), "in time order"
    kinds_told = {row["kind"] for row in told}
    assert {"command", "event", "span", "notification"} <= kinds_told, kinds_told
    assert {row["type"] for row in told if row["kind"] == "event"} >= {"OrderPlaced", "OrderConfirmed"}
    assert {row["span_id"] for row in told if row["kind"] == "span"} >= {server_span, email_span["spanID"]}
    assert [row for row in rows if row["kind"] == "missing" and row["source"] != "logs"] == []
