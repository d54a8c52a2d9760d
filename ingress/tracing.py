"""A server span per HTTP request, when tracing is on (``topology.tracing``); W3C ``traceparent`` in and out.

The span is a child of the request's ``traceparent`` when it carries a valid one (the caller's
sampling decision is followed), else it starts a trace; it is current while the request is
handled, so the command a request sends is published in a child span and its envelope's
``traceparent`` names this span. The answer carries the span's ``traceparent``. The
middleware is installed only when tracing is on: off, no request pays for it.
"""

from __future__ import annotations

from typing import Any

import falcon

from topology import tracing


class Trace:
    """Opens the request's server span first and ends it after every other middleware answered."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        attributes = {
            "http.request.method": req.method,
            "url.path": req.path,
            "url.scheme": req.scheme,
            "server.address": req.host,
            "client.address": req.remote_addr or "",
        }
        req.context.trace = tracing.server_span(req.method, req.get_header(tracing.HEADER), attributes)

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: object, ok: bool) -> None:
        opened: tuple[Any, object] | None = getattr(req.context, "trace", None)
        if opened is None:
            return
        span, token = opened
        route = req.uri_template
        if route:
            span.update_name(f"{req.method} {route}")
            span.set_attribute("http.route", route)
        status = resp.status_code
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            tracing.fail(span, str(resp.status))
        resp.set_header(tracing.HEADER, tracing.format_traceparent(span.get_span_context()))
        tracing.end_current(span, token)


def middleware() -> list[object]:
    """The tracing middleware when tracing is on in this process, else none."""
    return [Trace()] if tracing.TRACER is not None else []
