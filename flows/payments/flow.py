"""Wiring of the payments flow. Step ids are a state contract: never rename one without a migration note.

Run: ``python -m flows run payments`` (``shopstream flow payments``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.operators import StatefulLogic
from bytewax.outputs import Sink

from flows import steps, templates, tracing
from flows.envelopes import Cause, Incoming, emit
from flows.kafka_output import Out
from flows.metrics import begin_measured
from flows.outcome import Send
from flows.payments import logic
from flows.payments.http_gateway import HttpGateway
from flows.payments.port import Answer, Call, PaymentGateway
from topology.messages import AuthorizePayment, AuthorizePaymentV2, CapturePayment, RefundPayment, VoidPayment
from topology.settings import Settings

SERVICE = "payments"
ACCEPTS = (AuthorizePayment, AuthorizePaymentV2, CapturePayment, VoidPayment, RefundPayment)


# A key with a call in flight is due at once: Bytewax schedules a wake-up at (notify time -
# the activation's start), so a time already past asks for the very next activation, where
# "now" would put it behind the worker's park and the OS scheduler.
DUE = datetime(1970, 1, 1, tzinfo=UTC)
Pending = tuple[Call, str, Cause]  # the call in flight, the command that asked for it, what caused it
Snapshot = tuple[logic.Payment | None, int, Pending | None]


class PaymentSteps(StatefulLogic[Incoming, list[Out], Snapshot]):
    """One order's payment; a gateway call in flight is finished before the next message for it.

    The call starts when its command is handled and its answer is folded in when Bytewax
    wakes the key (``notify_at``), when the next message for the order comes, or at the end
    of input. A snapshot taken while the call is in flight records it, and a restart calls
    again under the same idempotency key, so the provider answers what it answered before.
    """

    def __init__(
        self,
        resume: Snapshot | tuple[logic.Payment | None, int] | None,
        port: Callable[[], PaymentGateway],
        prefix: str,
    ) -> None:
        # A snapshot of two, (payment, version), has no call in flight.
        payment, version, pending = (*resume, None)[:3] if resume is not None else (None, 0, None)
        self.payment: logic.Payment | None = payment
        self.version: int = version
        self.pending: Pending | None = pending
        self.port, self.prefix = port, prefix
        self.answer: Answer | None = None
        if self.pending is not None and self.payment is not None:
            self.answer = self._begin(self.pending[0], self.payment.order_id)

    def _begin(self, call: Call, order_id: str) -> Answer:
        return begin_measured(self.port(), call, order_id)  # counted and timed (flows/metrics.py)

    def _emit(self, sends: list[Send], cause: Cause) -> list[Out]:
        outs, self.version = emit(sends, cause, SERVICE, self.prefix, self.version)
        return outs

    def _finish(self) -> list[Out]:
        """Fold the answer of the call in flight (waiting for it) into the state; its event."""
        if self.pending is None or self.answer is None or self.payment is None:
            return []
        call, command_id, cause = self.pending
        result = self.answer()  # GatewayUnavailable crashes the step: recovery calls again
        self.payment, sends = logic.settle(self.payment, call, result, command_id)
        self.pending = self.answer = None
        return self._emit(sends, cause)

    def on_item(self, value: Incoming) -> tuple[list[list[Out]], bool]:
        outs = self._finish()
        cause = Cause.of(value.envelope)
        self.payment, plan = logic.plan(self.payment, value.envelope.payload, value.envelope.id)
        if isinstance(plan, Call):
            self.pending = (plan, value.envelope.id, cause)
            self.answer = self._begin(plan, self.payment.order_id)
        else:
            outs += self._emit(plan, cause)
        return [outs], StatefulLogic.RETAIN

    def notify_at(self) -> datetime | None:
        return DUE if self.pending is not None else None

    def on_notify(self) -> tuple[list[list[Out]], bool]:
        return [self._finish()], StatefulLogic.RETAIN

    def on_eof(self) -> tuple[list[list[Out]], bool]:
        return [self._finish()], StatefulLogic.RETAIN

    def snapshot(self) -> Snapshot:
        return (self.payment, self.version, self.pending)


def build_flow(
    source: Source[Any] | None = None,
    sink: Sink[Any] | None = None,
    settings: Settings | None = None,
    gateway: PaymentGateway | None = None,
) -> Dataflow:
    begun = templates.start(SERVICE, source, settings)
    settings, prefix = begun.settings, begun.prefix

    connection: list[PaymentGateway] = [gateway] if gateway is not None else []

    def port() -> PaymentGateway:  # opened on first use in the worker, never at import
        if not connection:
            connection.append(
                tracing.traced_gateway(
                    HttpGateway(
                        settings.gateway_url,
                        settings.gateway_key.get_secret_value(),
                        settings.gateway_timeout_s,
                        settings.gateway_retries,
                        concurrency=settings.gateway_concurrency,
                    ),
                    SERVICE,
                )
            )
        return connection[0]

    routed = steps.decode_and_route("decode_and_route", begun.raw, SERVICE, ACCEPTS, begun.process.consumes, prefix)
    keyed = op.key_on("key_by_order_id", routed.handled, attrgetter("envelope.payload.order_id"))
    payments = op.stateful(
        "payment", keyed, tracing.traced_logic(lambda resume: PaymentSteps(resume, port, prefix), SERVICE)
    )
    templates.output(steps.collect_records("collect_records", payments, routed.dead), sink, settings)
    return begun.flow
