"""The HTTP access log: one ECS record per request on the ``shop.access`` logger.

Fields: ``http.request.method``, ``url.path`` (the route's template, ``/v1/orders/{order_id}``,
so ids stay out of it; the raw path, cut short, only when no route matched),
``http.response.status_code``, ``http.response.body.bytes``, ``event.duration`` (ns, from the
request's first middleware step to its last), ``client.ip`` (the client as
``SHOP_TRUSTED_PROXIES`` lets the ingress believe, ``ingress/addresses.py``),
``user_agent.original``, and ``shop.order_id`` / ``labels.correlation_id`` when the request
names an order or sent a command. A 5xx is logged at WARNING, every other answer at INFO.
Placed after the tracing middleware, so the request's span is still current here and the
record carries its ``trace.id``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import falcon

from ingress.addresses import ClientAddress
from topology.logs import ACCESS_LOGGER

log = logging.getLogger(ACCESS_LOGGER)
RAW_PATH_MAX = 200


def body_bytes(resp: falcon.Response) -> int:
    """The answer's body size: rendered (Falcon keeps what it rendered), else its declared length."""
    try:
        body = resp.render_body()
    except Exception:  # noqa: BLE001 - the log line must not fail the request; the error handler renders it
        body = None
    if body is not None:
        return len(body)
    return int(resp.content_length or 0)


class AccessLog:
    def __init__(self, addresses: ClientAddress) -> None:
        self.addresses = addresses

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.access_started = time.perf_counter_ns()

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict[str, Any]
    ) -> None:
        order_id = params.get("order_id")
        if order_id is not None:
            req.context.order_id = order_id

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: object, ok: bool) -> None:
        status = resp.status_code
        level = logging.WARNING if status >= 500 else logging.INFO
        if not log.isEnabledFor(level):
            return
        started = getattr(req.context, "access_started", None)
        duration = time.perf_counter_ns() - started if started is not None else 0
        route = req.uri_template or req.path[:RAW_PATH_MAX]
        fields: dict[str, object] = {
            "http.request.method": req.method,
            "url.path": route,
            "http.response.status_code": status,
            "http.response.body.bytes": body_bytes(resp),
            "event.duration": duration,
            "event.category": ["web"],
            "event.type": ["access"],
            "event.outcome": "failure" if status >= 500 else "success",
            "event.dataset": "ingress.access",
            "client.ip": self.addresses.of(req.remote_addr or "", req.get_header("X-Forwarded-For")),
        }
        agent = req.user_agent
        if agent:
            fields["user_agent.original"] = agent[:RAW_PATH_MAX]
        order_id = getattr(req.context, "order_id", None) or getattr(resp.context, "order_id", None)
        if order_id:
            fields["shop.order_id"] = order_id
        command_id = getattr(resp.context, "command_id", None)
        if command_id:
            fields["labels.correlation_id"] = command_id
        log.log(level, "%s %s %d %.1f ms", req.method, route, status, duration / 1e6, extra=fields)
