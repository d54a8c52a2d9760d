"""One abstract suite for the payment gateway port: the fake and the real HTTP adapter pass it alike."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from flows.exceptions import GatewayUnavailable
from flows.payments.gateway import Approved, Declined, FakeGateway, HttpGateway, PaymentGateway
from topology.messages import Money
from topology.settings import Settings

EUR = Money(1250, "EUR")


class GatewayContract:
    """What the payments flow relies on, whichever gateway is behind the port."""

    @pytest.fixture
    def gateway(self) -> Iterator[PaymentGateway]:
        raise NotImplementedError

    @staticmethod
    def key() -> str:
        return uuid.uuid4().hex

    def test_authorize_is_idempotent_by_key(self, gateway: PaymentGateway) -> None:
        key = self.key()
        first = gateway.authorize(key, "o1", EUR, "tok_visa")
        again = gateway.authorize(key, "o1", EUR, "tok_visa")
        assert isinstance(first, Approved)
        assert again == first

    def test_a_decline_is_a_result_not_an_exception(self, gateway: PaymentGateway) -> None:
        assert gateway.authorize(self.key(), "o2", EUR, "tok_decline") == Declined("card_declined")

    def test_capture_then_refund_up_to_the_captured_amount(self, gateway: PaymentGateway) -> None:
        auth = gateway.authorize(self.key(), "o3", EUR, "tok_visa")
        assert isinstance(auth, Approved)
        assert isinstance(gateway.capture(self.key(), auth.payment_id), Approved)
        assert isinstance(gateway.refund(self.key(), auth.payment_id, Money(1000, "EUR")), Approved)
        assert isinstance(gateway.refund(self.key(), auth.payment_id, Money(1000, "EUR")), Declined)

    def test_void_only_an_uncaptured_authorization(self, gateway: PaymentGateway) -> None:
        auth = gateway.authorize(self.key(), "o4", EUR, "tok_visa")
        assert isinstance(auth, Approved)
        assert isinstance(gateway.void(self.key(), auth.payment_id), Approved)
        assert isinstance(gateway.capture(self.key(), auth.payment_id), Declined)


class TestFakeGateway(GatewayContract):
    @pytest.fixture
    def gateway(self) -> Iterator[PaymentGateway]:
        yield FakeGateway()


@pytest.mark.stack
class TestHttpGateway(GatewayContract):
    @pytest.fixture
    def gateway(self, settings: Settings) -> Iterator[PaymentGateway]:
        yield HttpGateway(settings.gateway_url, "test-key", timeout_s=1.0, retries=3, backoff_s=0.01)
        httpx.put(f"{settings.gateway_url}/_admin/faults", json={"mode": "none"})

    def test_transient_5xx_are_retried_under_the_same_key(self, settings: Settings, gateway: PaymentGateway) -> None:
        order = f"retry-{uuid.uuid4().hex[:8]}"
        httpx.put(f"{settings.gateway_url}/_admin/faults", json={"mode": "error", "count": 3})
        result = gateway.authorize(f"{order}:authorize", order, EUR, "tok_visa")  # 3 failures, then an answer
        assert isinstance(result, Approved)
        assert gateway.authorize(f"{order}:authorize", order, EUR, "tok_visa") == result
        stats = httpx.get(f"{settings.gateway_url}/_admin/stats").json()
        assert stats[order]["authorizations"] == 1, "retries never made a second charge"

    def test_retries_run_out_into_an_infrastructure_error(self, settings: Settings, gateway: PaymentGateway) -> None:
        httpx.put(f"{settings.gateway_url}/_admin/faults", json={"mode": "error", "count": 4})
        with pytest.raises(GatewayUnavailable, match="after 4 attempts: http 503"):
            gateway.authorize(self.key(), "o-down", EUR, "tok_visa")

    def test_a_gateway_that_never_answers_is_an_infrastructure_error(self, settings: Settings) -> None:
        httpx.put(f"{settings.gateway_url}/_admin/faults", json={"mode": "slow", "count": 2, "delay_s": 0.5})
        impatient = HttpGateway(settings.gateway_url, "test-key", timeout_s=0.1, retries=1, backoff_s=0.01)
        try:
            with pytest.raises(GatewayUnavailable, match="after 2 attempts"):
                impatient.authorize(self.key(), "o-slow", EUR, "tok_visa")
        finally:
            httpx.put(f"{settings.gateway_url}/_admin/faults", json={"mode": "none"})

    def test_same_key_different_body_is_refused(self, settings: Settings) -> None:
        key = self.key()
        body = {"amount": 100, "currency": "EUR", "token": "tok_visa"}
        first = httpx.post(f"{settings.gateway_url}/v1/payments", json=body, headers={"Idempotency-Key": key})
        other = httpx.post(
            f"{settings.gateway_url}/v1/payments", json={**body, "amount": 101}, headers={"Idempotency-Key": key}
        )
        assert first.status_code == 201
        assert other.status_code == 409
