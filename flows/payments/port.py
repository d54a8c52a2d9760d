"""The payment gateway port: the calls a payment makes, their results, and the Protocol adapters implement.

A permanent failure (a decline, a refused state change) is a ``Declined`` result, which
the flow turns into an event. A transient failure (timeout, connection error, 5xx) is
retried by the adapter under the same idempotency key; when retries run out the adapter
raises ``flows.exceptions.GatewayUnavailable``, an infrastructure failure that crashes the
step so recovery replays it, with the same key, later.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from topology.messages import Money


@dataclass(frozen=True)
class Approved:
    payment_id: str


@dataclass(frozen=True)
class Declined:
    reason: str


GatewayResult = Approved | Declined


Operation = Literal["authorize", "capture", "void", "refund"]
Answer = Callable[[], GatewayResult]  # waits for the result of a call begun earlier; call it once


@dataclass(frozen=True)
class Call:
    """One gateway operation under its idempotency key.

    An authorization is paid with a one-time ``token``, or with a saved ``payment_method`` of
    the provider's ``customer`` it is attached to.
    """

    operation: Operation
    key: str
    amount: Money | None = None
    token: str | None = None
    payment_id: str | None = None
    payment_method: str | None = None
    customer: str | None = None


class PaymentGateway(Protocol):
    def authorize(self, key: str, order_id: str, amount: Money, token: str) -> GatewayResult: ...
    def authorize_saved(
        self, key: str, order_id: str, amount: Money, payment_method: str, customer: str
    ) -> GatewayResult: ...
    def capture(self, key: str, payment_id: str) -> GatewayResult: ...
    def void(self, key: str, payment_id: str) -> GatewayResult: ...
    def refund(self, key: str, payment_id: str, amount: Money) -> GatewayResult: ...

    def begin(self, call: Call, order_id: str) -> Answer:
        """Start a call and return how to wait for its result, so several calls can be out at once."""
        ...


class BegunGateway(ABC):
    """A gateway whose synchronous methods are ``begin`` and wait: only ``begin`` is its own."""

    @abstractmethod
    def begin(self, call: Call, order_id: str) -> Answer: ...

    def authorize(self, key: str, order_id: str, amount: Money, token: str) -> GatewayResult:
        return self.begin(Call("authorize", key, amount=amount, token=token), order_id)()

    def authorize_saved(
        self, key: str, order_id: str, amount: Money, payment_method: str, customer: str
    ) -> GatewayResult:
        call = Call("authorize", key, amount=amount, payment_method=payment_method, customer=customer)
        return self.begin(call, order_id)()

    def capture(self, key: str, payment_id: str) -> GatewayResult:
        return self.begin(Call("capture", key, payment_id=payment_id), "")()

    def void(self, key: str, payment_id: str) -> GatewayResult:
        return self.begin(Call("void", key, payment_id=payment_id), "")()

    def refund(self, key: str, payment_id: str, amount: Money) -> GatewayResult:
        return self.begin(Call("refund", key, amount=amount, payment_id=payment_id), "")()


def dispatch(gateway: PaymentGateway, call: Call, order_id: str) -> GatewayResult:
    """One call through the port's synchronous methods."""
    match call.operation:
        case "authorize" if call.payment_method is not None:
            assert call.amount is not None and call.customer is not None
            return gateway.authorize_saved(call.key, order_id, call.amount, call.payment_method, call.customer)
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
