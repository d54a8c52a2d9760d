"""The flows' spans, when tracing is on (``topology.tracing``); off, every wrapper returns what it was given.

Each record a step handles gets a ``<topic> process`` consumer span, a child of the span its
``traceparent`` header names, current while the step runs: the messages it emits take its
context (``Cause.of``) into their records' headers, and a call to the outside world it makes
is a client span under it. A call whose answer is read later (the payment gateway's
``begin``) ends its span when the answer is read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from bytewax.operators import StatefulLogic

from flows.envelopes import Incoming
from flows.notifications.port import Channel, Delivery, Refused
from flows.payments.port import Answer, Approved, BegunGateway, Call, GatewayResult, PaymentGateway
from topology import tracing

S = TypeVar("S")
R = TypeVar("R")
V = TypeVar("V")
W = TypeVar("W")


def _attributes(item: Incoming) -> dict[str, Any]:
    envelope = item.envelope
    # Few attributes: the SDK checks each one, and a sampled record pays for every one of them.
    return {
        **tracing.message_attributes(envelope.type, envelope.id, envelope.payload),
        "messaging.kafka.offset": item.offset,
    }


def handled(item: Incoming, service: str, tracer: Any) -> Any:
    """The consumer span of one record, current within the ``with`` block (none for an unsampled trace)."""
    passed = tracing.unsampled(item.record_trace)
    if passed is not None:
        return tracing.passing(passed)
    return tracing.consuming(item.topic, item.record_trace, None, _attributes(item), tracer)


def traced_step(step: Callable[[S, Incoming], R], service: str) -> Callable[[S, Incoming], R]:
    """A ``stateful_map`` step that handles each record in its span."""
    tracer = tracing.tracer(service)
    if tracer is None:
        return step

    def traced(state: S, item: Incoming) -> R:
        with handled(item, service, tracer):
            return step(state, item)

    return traced


def traced_map(fn: Callable[[Incoming], R], service: str) -> Callable[[Incoming], R]:
    """A ``map`` that handles each record in its span (a record passed on takes its headers from it)."""
    tracer = tracing.tracer(service)
    if tracer is None:
        return fn

    def traced(item: Incoming) -> R:
        with handled(item, service, tracer):
            return fn(item)

    return traced


class _TracedLogic(StatefulLogic[Incoming, W, Any]):
    """A ``stateful`` step's logic whose ``on_item`` runs in the record's span; the rest is the logic's own."""

    def __init__(self, logic: StatefulLogic[Incoming, W, Any], service: str, tracer: Any) -> None:
        self.logic, self.service, self.tracer = logic, service, tracer

    def on_item(self, value: Incoming) -> tuple[Any, bool]:
        with handled(value, self.service, self.tracer):
            return self.logic.on_item(value)

    def on_notify(self) -> tuple[Any, bool]:
        return self.logic.on_notify()

    def on_eof(self) -> tuple[Any, bool]:
        return self.logic.on_eof()

    def notify_at(self) -> datetime | None:
        return self.logic.notify_at()

    def snapshot(self) -> Any:
        return self.logic.snapshot()


def traced_logic(
    build: Callable[[V | None], StatefulLogic[Incoming, W, V]], service: str
) -> Callable[[V | None], StatefulLogic[Incoming, W, V]]:
    """The builder of a ``stateful`` step, its logics handling each record in the record's span."""
    tracer = tracing.tracer(service)
    if tracer is None:
        return build
    return lambda resume: _TracedLogic(build(resume), service, tracer)


# -- the outside world ------------------------------------------------------------------------


class TracedGateway(BegunGateway):
    """A payment gateway whose calls are client spans (``payment_gateway <operation>``)."""

    def __init__(self, gateway: PaymentGateway, service: str) -> None:
        self.gateway, self.tracer = gateway, tracing.tracer(service)

    def begin(self, call: Call, order_id: str) -> Answer:
        attributes = {"shop.gateway.operation": call.operation, "peer.service": "payment-gateway"}
        if order_id:
            attributes["shop.order_id"] = order_id
        span = tracing.start_span(
            f"payment_gateway {call.operation}", "CLIENT", attributes=attributes, tracer=self.tracer
        )
        try:
            answer = self.gateway.begin(call, order_id)
        except Exception as err:
            tracing.fail(span, str(err))
            span.end()
            raise

        def finish() -> GatewayResult:
            try:
                result = answer()
            except Exception as err:  # GatewayUnavailable, or a defect: the span says so and ends
                tracing.fail(span, str(err))
                span.end()
                raise
            span.set_attribute("shop.gateway.outcome", "approved" if isinstance(result, Approved) else "declined")
            span.end()
            return result

        return finish


class TracedChannel:
    """A delivery channel whose deliveries are client spans (``smtp send``, ``sms send``, ``push send``)."""

    def __init__(self, name: str, channel: Channel, service: str) -> None:
        self.name, self.channel, self.tracer = name, channel, tracing.tracer(service)

    def deliver(self, notification_id: str, to: str, subject: str, body: str) -> Delivery:
        attributes = {"shop.notification_id": notification_id, "peer.service": self.name}
        span = tracing.start_span(f"{self.name} send", "CLIENT", attributes=attributes, tracer=self.tracer)
        try:
            outcome = self.channel.deliver(notification_id, to, subject, body)
        except Exception as err:  # ChannelUnavailable, or a defect: the span says so and ends
            tracing.fail(span, str(err))
            span.end()
            raise
        if isinstance(outcome, Refused):
            tracing.fail(span, outcome.reason)
        span.end()
        return outcome


def traced_channels(channels: dict[str, Channel], service: str) -> dict[str, Channel]:
    """The channels, each delivery a client span named after its protocol (email goes by SMTP)."""
    if tracing.tracer(service) is None:
        return channels
    return {
        name: TracedChannel("smtp" if name == "email" else name, channel, service) for name, channel in channels.items()
    }


def traced_gateway(gateway: PaymentGateway, service: str) -> PaymentGateway:
    """The gateway, each call a client span."""
    return gateway if tracing.tracer(service) is None else TracedGateway(gateway, service)
