"""The payment gateway port, its real HTTP adapter, and a fake for unit tests.

A permanent failure (a decline, a refused state change) is a ``Declined`` result, which
the flow turns into an event. A transient failure (timeout, connection error, 5xx) is
retried with exponential backoff under the same idempotency key; when retries run out
the adapter raises ``GatewayUnavailable``, an infrastructure failure that crashes the
step so recovery replays it, with the same key, later.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from flows.exceptions import GatewayUnavailable
from topology.messages import Money


@dataclass(frozen=True)
class Approved:
    payment_id: str


@dataclass(frozen=True)
class Declined:
    reason: str


GatewayResult = Approved | Declined


class PaymentGateway(Protocol):
    def authorize(self, key: str, order_id: str, amount: Money, token: str) -> GatewayResult: ...
    def capture(self, key: str, payment_id: str) -> GatewayResult: ...
    def void(self, key: str, payment_id: str) -> GatewayResult: ...
    def refund(self, key: str, payment_id: str, amount: Money) -> GatewayResult: ...


class HttpGateway:
    """Talks to the provider's HTTP API (in development: the stand-in the stack starts)."""

    def __init__(
        self, base_url: str, api_key: str, timeout_s: float = 2.0, retries: int = 4, backoff_s: float = 0.05
    ) -> None:
        self.client = httpx.Client(
            base_url=base_url,
            timeout=timeout_s,
            headers={"Authorization": f"Bearer {api_key}"},
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )
        self.retries = retries
        self.backoff_s = backoff_s

    def _post(self, path: str, key: str, body: dict[str, object], ok: tuple[int, ...]) -> GatewayResult:
        last = "no attempt"
        for attempt in range(self.retries + 1):
            try:
                answer = self.client.post(path, json=body, headers={"Idempotency-Key": key})
            except httpx.TransportError as err:
                last = f"{type(err).__name__}: {err}"
            else:
                if answer.status_code in ok:
                    data = answer.json()
                    return Approved(str(data.get("id") if "payment" not in data else data["payment"]["id"]))
                if answer.status_code < 500 and answer.status_code != 429:
                    error = (
                        answer.json().get("error", {})
                        if answer.headers.get("content-type", "").startswith("application/json")
                        else {}
                    )
                    return Declined(str(error.get("code") or f"http {answer.status_code}"))
                last = f"http {answer.status_code}"
            if attempt < self.retries:
                time.sleep(self.backoff_s * 2**attempt)
        raise GatewayUnavailable(f"payment gateway {path} failed after {self.retries + 1} attempts: {last}")

    def authorize(self, key: str, order_id: str, amount: Money, token: str) -> GatewayResult:
        body = {"amount": amount.amount, "currency": amount.currency, "token": token, "order_id": order_id}
        return self._post("/v1/payments", key, body, (201,))

    def capture(self, key: str, payment_id: str) -> GatewayResult:
        return self._post(f"/v1/payments/{payment_id}/capture", key, {}, (200,))

    def void(self, key: str, payment_id: str) -> GatewayResult:
        return self._post(f"/v1/payments/{payment_id}/void", key, {}, (200,))

    def refund(self, key: str, payment_id: str, amount: Money) -> GatewayResult:
        return self._post(f"/v1/payments/{payment_id}/refunds", key, {"amount": amount.amount}, (201,))


@dataclass
class FakeGateway:
    """In-memory twin of the provider for unit tests: idempotency keys, declines, states."""

    declined_tokens: frozenset[str] = frozenset({"tok_decline", "tok_insufficient"})
    answers: dict[str, GatewayResult] = field(default_factory=dict)
    payments: dict[str, dict[str, int | str]] = field(default_factory=dict)

    def _once(self, key: str, run: object) -> GatewayResult:
        if key not in self.answers:
            self.answers[key] = run()  # type: ignore[operator]
        return self.answers[key]

    def authorize(self, key: str, order_id: str, amount: Money, token: str) -> GatewayResult:
        def run() -> GatewayResult:
            if token in self.declined_tokens:
                return Declined("card_declined")
            payment_id = "pay_" + uuid.uuid4().hex[:20]
            self.payments[payment_id] = {
                "order_id": order_id,
                "amount": amount.amount,
                "state": "authorized",
                "captured": 0,
                "refunded": 0,
            }
            return Approved(payment_id)

        return self._once(key, run)

    def _move(self, key: str, payment_id: str, allowed: str, to: str) -> GatewayResult:
        def run() -> GatewayResult:
            payment = self.payments.get(payment_id)
            if payment is None:
                return Declined("no_such_payment")
            if payment["state"] == to:
                return Approved(payment_id)
            if payment["state"] != allowed:
                return Declined("invalid_state")
            payment["state"] = to
            if to == "captured":
                payment["captured"] = payment["amount"]
            return Approved(payment_id)

        return self._once(key, run)

    def capture(self, key: str, payment_id: str) -> GatewayResult:
        return self._move(key, payment_id, "authorized", "captured")

    def void(self, key: str, payment_id: str) -> GatewayResult:
        return self._move(key, payment_id, "authorized", "voided")

    def refund(self, key: str, payment_id: str, amount: Money) -> GatewayResult:
        def run() -> GatewayResult:
            payment = self.payments.get(payment_id)
            if payment is None or payment["state"] not in ("captured", "refunded"):
                return Declined("invalid_state")
            if int(payment["refunded"]) + amount.amount > int(payment["captured"]):
                return Declined("invalid_state")
            payment["refunded"] = int(payment["refunded"]) + amount.amount
            payment["state"] = "refunded"
            return Approved(payment_id)

        return self._once(key, run)
