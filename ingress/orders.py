"""Orders: place one, read it with its lines, history and payment, cancel it, ask for a refund, ship and deliver it.

``POST /v1/orders`` (customers; SKUs and quantities only: the orders flow prices the order
from the catalog when its stock is reserved; paid with a one-time card token or one of the
caller's saved payment methods, ``ingress.wallets``),
``GET /v1/orders/{id}`` (the order's customer, support, admins; ``?wait`` reads fresh and
waits for a just-placed order), ``GET /v1/orders`` (support and admins: orders by customer,
status, SKU, placement time and total, from the search index), ``POST /v1/orders/{id}/cancel`` and
``POST /v1/orders/{id}/refunds`` (the order's customer, admins), ``POST /v1/orders/{id}/shipments``
and ``POST /v1/orders/{id}/delivery`` (admins, and a partner owning every SKU of the order).

Shipping asks for a confirmed order and delivering for a shipped one, as the read model has it
(409 ``wrong-order-state`` otherwise); the saga, which ignores a command its order is not ready
for, stays the judge.
"""

from __future__ import annotations

import uuid
from typing import Literal

import falcon

from ingress import answers
from ingress.auth.tokens import Principal
from ingress.bodies import read_body, read_query
from ingress.commands import Call, Commands
from ingress.pending import PendingOwners, not_caught_up
from ingress.policy import Resource, authorize
from ingress.problems import Problem
from ingress.queries import Queries
from ingress.schemas import (
    CancelOrderRequest,
    DeliveryRequest,
    OrderQuery,
    OrderSearchQuery,
    PlaceOrderRequest,
    RefundRequest,
    ShipmentRequest,
)
from ingress.wallets import Wallets
from topology.messages import (
    CancelOrder,
    MarkOrderDelivered,
    MarkOrderShipped,
    Message,
    Money,
    OrderItem,
    PlaceOrderV2,
    PlaceOrderV3,
    RequestRefund,
)
from topology.processes import GET_ORDER
from topology.settings import Settings
from topology.topics import ORDER_COMMANDS


def status_url(order_id: str) -> str:
    return GET_ORDER.path.format(order_id=order_id)


Fulfilled = Literal["shipped", "delivered"]
#: The status an order must have, as the read model has it, to become shipped or delivered.
READY_TO_BECOME: dict[Fulfilled, str] = {"shipped": "confirmed", "delivered": "shipped"}


def ready(order_id: str, status: str | None, becomes: Fulfilled) -> None:
    """Nothing when an order of ``status`` may become ``becomes``; else 409 (it is not ready, or past it)."""
    needed = READY_TO_BECOME[becomes]
    if status != needed:
        raise Problem(
            409,
            "wrong-order-state",
            "the order is not in a state for this",
            f"order {order_id} is {status}: only a {needed} order can be {becomes}",
        )


class OrdersResource:
    def __init__(
        self, commands: Commands, queries: Queries, settings: Settings, pending: PendingOwners, wallets: Wallets
    ) -> None:
        self.commands, self.queries, self.settings, self.pending = commands, queries, settings, pending
        self.wallets = wallets

    def _owned(self, principal: Principal, order_id: str) -> Resource:
        """The order as the policy sees it; 409 to its customer while the read model has not caught up with it."""
        resource = self.queries.order_resource(order_id)
        if not resource.exists and self.pending.owner("order", order_id) == principal.subject:
            raise not_caught_up("order", order_id)
        return resource

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        principal: Principal = req.context.principal
        authorize(principal, "order.place")
        body, raw = read_body(req, PlaceOrderRequest, self.settings.max_body_bytes)
        skus = [line.sku for line in body.lines]
        if len(set(skus)) != len(skus):
            raise Problem(422, "invalid-body", "each SKU may appear once per order")
        known = self.queries.prices(skus)  # only to answer an unknown SKU at once: prices are not sent
        unknown = sorted(set(skus) - known.keys())
        if unknown:
            raise Problem(422, "unknown-sku", "unknown products", f"not in the catalog: {', '.join(unknown)}")
        order_id = "o_" + uuid.uuid4().hex[:20]
        lines = [OrderItem(line.sku, line.quantity) for line in body.lines]
        token, method = body.payment_token, body.payment_method_id
        command: Message
        check = None  # a saved method is checked to be the caller's unless the request is a replay
        if token is not None and method is None:  # version 2, which orders flows of the previous release read too
            command = PlaceOrderV2(order_id=order_id, customer_id=principal.subject, lines=lines, payment_token=token)
        elif method is not None and token is None:
            saved, check = self.wallets.paying_with(principal, method)
            command = PlaceOrderV3(order_id=order_id, customer_id=principal.subject, lines=lines, payment=saved)
        else:
            raise Problem(422, "invalid-body", "name one way to pay", "send payment_token or payment_method_id")
        sent = self.commands.send(
            Call.of(req, raw), ORDER_COMMANDS, order_id, command, status_url(order_id), order_id, check
        )
        self.pending.record("order", sent.answer.order_id or order_id, principal.subject)
        answers.write(resp, sent.answer, sent.status, sent.headers)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        authorize(req.context.principal, "order.search")
        answers.write(resp, self.queries.orders(read_query(req, OrderSearchQuery)))

    def on_get_one(self, req: falcon.Request, resp: falcon.Response, order_id: str) -> None:
        principal: Principal = req.context.principal
        query = read_query(req, OrderQuery)
        order = self.queries.order(order_id, wait_s=min(query.wait, self.settings.read_wait_max_s))
        resource = Resource(customer_id=order.customer_id) if order else Resource(exists=False)
        authorize(principal, "order.read", resource)
        if order is None:  # an admin may ask for any order, and learns it does not exist
            raise Problem(404, "not-found", "not found")
        answers.write(resp, order)

    def on_post_cancel(self, req: falcon.Request, resp: falcon.Response, order_id: str) -> None:
        principal: Principal = req.context.principal
        body, raw = read_body(req, CancelOrderRequest, self.settings.max_body_bytes)
        authorize(principal, "order.cancel", self._owned(principal, order_id))
        command = CancelOrder(order_id=order_id, reason=body.reason)
        sent = self.commands.send(Call.of(req, raw), ORDER_COMMANDS, order_id, command, status_url(order_id), order_id)
        answers.write(resp, sent.answer, sent.status, sent.headers)

    def _fulfil(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        order_id: str,
        raw: bytes,
        command: Message,
        becomes: Fulfilled,
    ) -> None:
        """Send ``command``, which makes the order ``becomes``, if the caller may fulfil the order and it is ready."""
        resource, status = self.queries.order_to_fulfil(order_id)
        authorize(req.context.principal, "order.fulfil", resource)
        if not resource.exists:  # an admin may ask for any order, and learns it does not exist
            raise Problem(404, "not-found", "not found")
        sent = self.commands.send(
            Call.of(req, raw),
            ORDER_COMMANDS,
            order_id,
            command,
            status_url(order_id),
            order_id,
            precondition=lambda: ready(order_id, status, becomes),
        )
        answers.write(resp, sent.answer, sent.status, sent.headers)

    def on_post_shipments(self, req: falcon.Request, resp: falcon.Response, order_id: str) -> None:
        body, raw = read_body(req, ShipmentRequest, self.settings.max_body_bytes)
        command = MarkOrderShipped(order_id=order_id, carrier=body.carrier, tracking_code=body.tracking_code)
        self._fulfil(req, resp, order_id, raw, command, "shipped")

    def on_post_delivery(self, req: falcon.Request, resp: falcon.Response, order_id: str) -> None:
        raw = b""
        if req.content_length:
            _, raw = read_body(req, DeliveryRequest, self.settings.max_body_bytes)
        self._fulfil(req, resp, order_id, raw, MarkOrderDelivered(order_id=order_id), "delivered")

    def on_post_refunds(self, req: falcon.Request, resp: falcon.Response, order_id: str) -> None:
        principal: Principal = req.context.principal
        body, raw = read_body(req, RefundRequest, self.settings.max_body_bytes)
        authorize(principal, "order.refund", self._owned(principal, order_id))
        command = RequestRefund(order_id=order_id, amount=Money(body.amount, body.currency), reason=body.reason)
        sent = self.commands.send(Call.of(req, raw), ORDER_COMMANDS, order_id, command, status_url(order_id), order_id)
        answers.write(resp, sent.answer, sent.status, sent.headers)
