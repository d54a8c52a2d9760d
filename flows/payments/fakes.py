"""A hand-written fake of the payment gateway for unit tests; it passes the same contract tests as the real adapter."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from flows.payments.port import Answer, Approved, Call, Declined, GatewayResult, dispatch
from topology.messages import Money


@dataclass
class FakeGateway:
    """In-memory twin of the provider for unit tests: idempotency keys, declines, states, saved cards.

    ``save_card`` stands in for the customer vault (the ingress's business, not the port's): it
    attaches a card made from a token to a customer, as the provider's API does.
    """

    declined_tokens: frozenset[str] = frozenset({"tok_decline", "tok_insufficient"})
    answers: dict[str, GatewayResult] = field(default_factory=dict)
    payments: dict[str, dict[str, int | str]] = field(default_factory=dict)
    methods: dict[str, tuple[str, str]] = field(default_factory=dict)  # payment method: (customer, token)

    def save_card(self, customer: str, token: str) -> str:
        """A payment method made from ``token`` and attached to ``customer``; its id."""
        method = "pm_" + uuid.uuid4().hex[:20]
        self.methods[method] = (customer, token)
        return method

    def begin(self, call: Call, order_id: str) -> Answer:
        result = dispatch(self, call, order_id)
        return lambda: result

    def _once(self, key: str, run: object) -> GatewayResult:
        if key not in self.answers:
            self.answers[key] = run()  # type: ignore[operator]
        return self.answers[key]

    def _authorized(self, order_id: str, amount: Money) -> GatewayResult:
        payment_id = "pay_" + uuid.uuid4().hex[:20]
        self.payments[payment_id] = {
            "order_id": order_id,
            "amount": amount.amount,
            "state": "authorized",
            "captured": 0,
            "refunded": 0,
        }
        return Approved(payment_id)

    def authorize(self, key: str, order_id: str, amount: Money, token: str) -> GatewayResult:
        def run() -> GatewayResult:
            if token in self.declined_tokens:
                return Declined("card_declined")
            return self._authorized(order_id, amount)

        return self._once(key, run)

    def authorize_saved(
        self, key: str, order_id: str, amount: Money, payment_method: str, customer: str
    ) -> GatewayResult:
        def run() -> GatewayResult:
            saved = self.methods.get(payment_method)
            if saved is None:
                return Declined("resource_missing")
            owner, token = saved
            if owner != customer:
                return Declined("payment_method_not_attached")
            if token in self.declined_tokens:
                return Declined("card_declined")
            return self._authorized(order_id, amount)

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
