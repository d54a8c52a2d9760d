"""One abstract suite for the payment gateway port: the fake and the real HTTP adapter pass it alike."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flows.exceptions import GatewayUnavailable
from flows.payments.fakes import FakeGateway
from flows.payments.http_gateway import HttpGateway
from flows.payments.port import Approved, Call, Declined, PaymentGateway
from ops.stack.stores import Gateway
from tests.support.processes import free_port
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

    def test_calls_begun_together_answer_like_calls_made_one_by_one(self, gateway: PaymentGateway) -> None:
        keys = [self.key() for _ in range(5)]
        answers = [
            gateway.begin(Call("authorize", key, amount=EUR, token="tok_visa"), f"ob{i}") for i, key in enumerate(keys)
        ]
        results = [answer() for answer in reversed(answers)][::-1]  # read in another order than begun
        assert all(isinstance(result, Approved) for result in results)
        assert len({result.payment_id for result in results if isinstance(result, Approved)}) == 5
        assert [gateway.authorize(key, f"ob{i}", EUR, "tok_visa") for i, key in enumerate(keys)] == results
        declined = gateway.begin(Call("authorize", self.key(), amount=EUR, token="tok_decline"), "ob-d")
        assert declined() == Declined("card_declined")


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


@pytest.mark.stack
def test_calls_out_at_once_are_capped_by_reading_the_oldest_answer_first(settings: Settings) -> None:
    gateway = HttpGateway(settings.gateway_url, "test-key", concurrency=2)
    answers = [
        gateway.begin(Call("authorize", uuid.uuid4().hex, amount=EUR, token="tok_visa"), f"oc{i}") for i in range(5)
    ]
    assert len(gateway.out) == 2, "two requests written and not yet read"
    assert len(gateway.idle) == 0, "each read freed the connection the next request went out on"
    assert [out.outcome is None for out in gateway.out] == [True, True]
    results = [answer() for answer in reversed(answers)]  # in any order: answers read early wait with their call
    assert all(isinstance(result, Approved) for result in results)
    assert len({result.payment_id for result in results}) == 5  # type: ignore[union-attr]
    assert len(gateway.out) == 0
    assert len(gateway.idle) == 2, "the two connections, back in the pool"


@pytest.mark.stack
def test_the_stand_in_forgets_keys_after_their_ttl_keeps_payments_and_compacts_its_journal(
    settings: Settings, tmp_path: Path
) -> None:
    """Idempotency keys live a day at real providers (here 1 s); the journal stays the size of what is live."""
    binary = Gateway(settings).binary  # built by the stack from ops/gateway
    journal = tmp_path / "journal.jsonl"

    def serve() -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        process = subprocess.Popen(
            [str(binary), "-listen", f"127.0.0.1:{port}", "-journal", str(journal), "-key-ttl", "1s"],
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(f"{url}/healthz", timeout=0.5)
                return process, url
            except httpx.TransportError:
                time.sleep(0.05)
        process.kill()
        raise AssertionError("the stand-in did not start")

    def authorize(url: str, key: str, amount: int) -> httpx.Response:
        body = {"amount": amount, "currency": "EUR", "token": "tok_visa", "order_id": "ttl-1"}
        return httpx.post(f"{url}/v1/payments", json=body, headers={"Idempotency-Key": key}, timeout=5)

    process, url = serve()
    try:
        first = authorize(url, "k1", 500)
        assert authorize(url, "k1", 500).json() == first.json(), "within the TTL: the first answer again"
        assert authorize(url, "k1", 700).status_code == 409, "within the TTL: another body is refused"
        for n in range(50):
            paid = authorize(url, f"many-{n}", 100).json()["id"]
            httpx.post(f"{url}/v1/payments/{paid}/capture", headers={"Idempotency-Key": f"cap-{n}"}, timeout=5)
        time.sleep(2.5)  # past the TTL, and past a tidy-up
        after = authorize(url, "k1", 700)
        assert after.status_code == 201 and after.json()["id"] != first.json()["id"], "the key was forgotten"
        payment = httpx.get(f"{url}/v1/payments/{first.json()['id']}", timeout=5)
        assert payment.status_code == 200, "payments are kept"
    finally:
        process.kill()
        process.wait(10)
    lines_before = len(journal.read_text().splitlines())
    time.sleep(1.5)  # every key expires by the time it starts again
    process, url = serve()
    try:
        assert httpx.get(f"{url}/v1/payments/{first.json()['id']}", timeout=5).status_code == 200
    finally:
        process.kill()
        process.wait(10)
    lines = journal.read_text().splitlines()
    assert lines_before == 102, "every write was journalled"
    assert len(lines) == 52, "compacted at start: the 52 payments (50 captured), no expired key"
    assert sum('"captured"' in line and '"state":"captured"' in line for line in lines) == 50
