"""``shopstream trace``'s reading of a Jaeger trace and its terminal lines (the live story: tests/test_traces.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from ops.trace import Entry, Story, render, span_entries

T0 = 1_796_180_000_000_000  # microseconds


def jaeger_span(span_id: str, name: str, start: int, parent: str | None = None, **tags: object) -> dict[str, object]:
    refs = [{"refType": "CHILD_OF", "traceID": "t1", "spanID": parent}] if parent else []
    return {
        "traceID": "t1",
        "spanID": span_id,
        "operationName": name,
        "references": refs,
        "startTime": T0 + start,
        "duration": 1500,
        "tags": [{"key": k, "type": "string", "value": v} for k, v in tags.items()],
        "processID": "p1" if span_id.startswith("i") else "p2",
    }


TRACE = {
    "traceID": "t1",
    "spans": [
        jaeger_span("o1", "shop.orders.commands process", 300, "i2"),
        jaeger_span("i1", "POST /v1/orders", 0, "caller"),  # the caller's span is not in the trace
        jaeger_span("i2", "shop.orders.commands publish", 100, "i1"),
        jaeger_span("o2", "shop.orders.inbox process", 500, "o1", error=True, **{"otel.status_description": "boom"}),
    ],
    "processes": {"p1": {"serviceName": "ingress"}, "p2": {"serviceName": "orders"}},
}


def test_each_span_has_its_service_parent_depth_and_time() -> None:
    entries = {e.detail["span_id"]: e for e in span_entries(TRACE)}
    assert {k: e.service for k, e in entries.items()} == {
        "i1": "ingress",
        "i2": "ingress",
        "o1": "orders",
        "o2": "orders",
    }
    assert {k: e.depth for k, e in entries.items()} == {"i1": 0, "i2": 1, "o1": 2, "o2": 3}
    assert entries["o1"].detail["parent_span_id"] == "i2" and entries["i1"].detail["parent_span_id"] == "caller"
    assert entries["i1"].at == datetime.fromtimestamp(T0 / 1_000_000, UTC)
    assert entries["o2"].detail["error"] and entries["o2"].what.endswith("ERROR boom")
    assert entries["i2"].what == "shop.orders.commands publish  1.5 ms"


def test_the_story_is_told_oldest_first_with_spans_indented_and_what_is_missing() -> None:
    story = Story("o-1", list(span_entries(TRACE)), ["t1"], {"logs": "the search store did not answer"})
    at = datetime.fromtimestamp(T0 / 1_000_000, UTC)
    story.entries.append(Entry(at, "command", "user:ann", "PlaceOrder v2 on shop.orders.commands"))
    lines = render(story)
    assert lines[0] == "order o-1: 5 entries, traces t1"
    assert [line.split(None, 3)[1] for line in lines[1:6]] == ["span", "command", "span", "span", "span"]
    assert lines[3].endswith("  shop.orders.commands publish  1.5 ms"), "depth 1: indented once"
    assert lines[-1] == "(logs: the search store did not answer)"
