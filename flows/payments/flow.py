"""Wiring of the payments flow. Step ids are a state contract: never rename one without a migration note.

Run: ``python -m bytewax.run "flows.payments.flow:build_flow()"`` (``shopstream flow payments``).
"""

from __future__ import annotations

from typing import Any

from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from flows import streams
from flows.outcome import Send
from flows.payments import logic
from flows.payments.gateway import HttpGateway, PaymentGateway
from flows.streams import Incoming
from topology.messages import AuthorizePayment, CapturePayment, RefundPayment, VoidPayment
from topology.settings import Settings

SERVICE = "payments"
ACCEPTS = (AuthorizePayment, CapturePayment, VoidPayment, RefundPayment)


def call_gateway(gateway: PaymentGateway, call: logic.Call, order_id: str) -> logic.GatewayResult:
    match call.operation:
        case "authorize":
            assert call.amount is not None and call.token is not None
            return gateway.authorize(call.key, order_id, call.amount, call.token)
        case "capture":
            return gateway.capture(call.key, call.payment_id or "")
        case "void":
            return gateway.void(call.key, call.payment_id or "")
        case "refund":
            assert call.amount is not None
            return gateway.refund(call.key, call.payment_id or "", call.amount)


def build_flow(
    source: Source[Any] | None = None,
    sink: Sink[Any] | None = None,
    settings: Settings | None = None,
    gateway: PaymentGateway | None = None,
) -> Dataflow:
    begun = streams.start(SERVICE, source, settings)
    settings = begun.settings
    connection: list[PaymentGateway] = [gateway] if gateway is not None else []

    def port() -> PaymentGateway:  # opened on first use in the worker, never at import
        if not connection:
            connection.append(
                HttpGateway(
                    settings.gateway_url,
                    settings.gateway_key.get_secret_value(),
                    settings.gateway_timeout_s,
                    settings.gateway_retries,
                )
            )
        return connection[0]

    def handle(payment: logic.Payment | None, item: Incoming) -> tuple[logic.Payment, list[Send]]:
        command_id = item.envelope.id
        payment, plan = logic.plan(payment, item.envelope.payload, command_id)
        if isinstance(plan, logic.Call):
            result = call_gateway(port(), plan, payment.order_id)
            return logic.settle(payment, plan, result, command_id)
        return payment, plan

    return streams.entity_flow(
        begun,
        ACCEPTS,
        "payment",
        lambda item: item.envelope.payload.order_id,  # type: ignore[attr-defined]
        handle,
        sink,
    )
