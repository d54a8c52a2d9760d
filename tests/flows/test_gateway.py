"""One abstract suite for the payment gateway port: the fake and the real HTTP adapter pass it alike.

The real adapter talks to a stand-in built from ``ops/gateway`` as it is now (the stack's when it
runs that source, else a private one: ``tests.support.gateway``), and so do the stand-in's own tests.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from flows.exceptions import GatewayUnavailable
from flows.payments.fakes import FakeGateway
from flows.payments.http_gateway import HttpGateway
from flows.payments.port import Approved, Call, Declined, PaymentGateway
from ops.stack.stores import Gateway
from tests.support.gateway import current_gateway
from tests.support.processes import free_port
from topology.messages import Money
from topology.settings import Settings

EUR = Money(1250, "EUR")
#: Saves a card made from a token for a new customer of the provider: (payment method, customer).
SaveCard = Callable[[str], tuple[str, str]]


@pytest.fixture(scope="module")
def stand_in(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a stand-in built from the current source (for this module's tests alone)."""
    with current_gateway(settings, tmp_path_factory.mktemp("gateway")) as url:
        yield url


def write(url: str, path: str, body: dict[str, object], key: str | None = None) -> httpx.Response:
    """One write to the stand-in under an Idempotency-Key (a new one unless given)."""
    return httpx.post(f"{url}{path}", json=body, headers={"Idempotency-Key": key or uuid.uuid4().hex}, timeout=5)


def save_card(url: str, token: str) -> tuple[str, str]:
    """A customer and a payment method made from ``token`` attached to it, through the provider's API."""
    customer = write(url, "/v1/customers", {"metadata": {"user_id": "u-test"}}).json()["id"]
    method = write(url, "/v1/payment_methods", {"type": "card", "card": {"token": token}}).json()["id"]
    assert write(url, f"/v1/payment_methods/{method}/attach", {"customer": customer}).status_code == 200
    return method, customer


class GatewayContract:
    """What the payments flow relies on, whichever gateway is behind the port."""

    @pytest.fixture
    def gateway(self) -> Iterator[PaymentGateway]:
        raise NotImplementedError

    @pytest.fixture
    def saved(self, gateway: PaymentGateway) -> SaveCard:
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

    def test_a_saved_card_pays_with_its_customer_once_per_key(self, gateway: PaymentGateway, saved: SaveCard) -> None:
        method, customer = saved("tok_visa")
        key = self.key()
        first = gateway.authorize_saved(key, "os1", EUR, method, customer)
        assert isinstance(first, Approved)
        assert gateway.authorize_saved(key, "os1", EUR, method, customer) == first
        begun = gateway.begin(Call("authorize", self.key(), amount=EUR, payment_method=method, customer=customer), "o")
        assert isinstance(begun(), Approved)

    def test_a_saved_card_charged_with_another_customer_is_declined(
        self, gateway: PaymentGateway, saved: SaveCard
    ) -> None:
        method, _ = saved("tok_visa")
        _, other = saved("tok_visa")
        refused = gateway.authorize_saved(self.key(), "os2", EUR, method, other)
        assert refused == Declined("payment_method_not_attached")
        assert gateway.authorize_saved(self.key(), "os3", EUR, "pm_nosuch", other) == Declined("resource_missing")

    def test_a_saved_card_is_declined_as_its_card_is(self, gateway: PaymentGateway, saved: SaveCard) -> None:
        method, customer = saved("tok_decline")
        assert gateway.authorize_saved(self.key(), "os4", EUR, method, customer) == Declined("card_declined")


class TestFakeGateway(GatewayContract):
    @pytest.fixture
    def gateway(self) -> Iterator[PaymentGateway]:
        yield FakeGateway()

    @pytest.fixture
    def saved(self, gateway: PaymentGateway) -> SaveCard:
        assert isinstance(gateway, FakeGateway)

        def save(token: str) -> tuple[str, str]:
            customer = f"cus_{uuid.uuid4().hex[:8]}"
            return gateway.save_card(customer, token), customer

        return save


@pytest.mark.stack
class TestHttpGateway(GatewayContract):
    @pytest.fixture
    def gateway(self, stand_in: str) -> Iterator[PaymentGateway]:
        yield HttpGateway(stand_in, "test-key", timeout_s=1.0, retries=3, backoff_s=0.01)
        httpx.put(f"{stand_in}/_admin/faults", json={"mode": "none"})

    @pytest.fixture
    def saved(self, stand_in: str) -> SaveCard:
        return lambda token: save_card(stand_in, token)

    def test_transient_5xx_are_retried_under_the_same_key(self, stand_in: str, gateway: PaymentGateway) -> None:
        order = f"retry-{uuid.uuid4().hex[:8]}"
        httpx.put(f"{stand_in}/_admin/faults", json={"mode": "error", "count": 3})
        result = gateway.authorize(f"{order}:authorize", order, EUR, "tok_visa")  # 3 failures, then an answer
        assert isinstance(result, Approved)
        assert gateway.authorize(f"{order}:authorize", order, EUR, "tok_visa") == result
        stats = httpx.get(f"{stand_in}/_admin/stats").json()
        assert stats[order]["authorizations"] == 1, "retries never made a second charge"

    def test_retries_run_out_into_an_infrastructure_error(self, stand_in: str, gateway: PaymentGateway) -> None:
        httpx.put(f"{stand_in}/_admin/faults", json={"mode": "error", "count": 4})
        with pytest.raises(GatewayUnavailable, match="after 4 attempts: http 503"):
            gateway.authorize(self.key(), "o-down", EUR, "tok_visa")

    def test_a_gateway_that_never_answers_is_an_infrastructure_error(self, stand_in: str) -> None:
        httpx.put(f"{stand_in}/_admin/faults", json={"mode": "slow", "count": 2, "delay_s": 0.5})
        impatient = HttpGateway(stand_in, "test-key", timeout_s=0.1, retries=1, backoff_s=0.01)
        try:
            with pytest.raises(GatewayUnavailable, match="after 2 attempts"):
                impatient.authorize(self.key(), "o-slow", EUR, "tok_visa")
        finally:
            httpx.put(f"{stand_in}/_admin/faults", json={"mode": "none"})

    def test_same_key_different_body_is_refused(self, stand_in: str) -> None:
        key = self.key()
        body = {"amount": 100, "currency": "EUR", "token": "tok_visa"}
        first = httpx.post(f"{stand_in}/v1/payments", json=body, headers={"Idempotency-Key": key})
        other = httpx.post(f"{stand_in}/v1/payments", json={**body, "amount": 101}, headers={"Idempotency-Key": key})
        assert first.status_code == 201
        assert other.status_code == 409

    def test_a_saved_cards_payment_names_its_method_and_customer(self, stand_in: str, gateway: PaymentGateway) -> None:
        method, customer = save_card(stand_in, "tok_mastercard")
        paid = gateway.authorize_saved(self.key(), "os5", EUR, method, customer)
        assert isinstance(paid, Approved)
        payment = httpx.get(f"{stand_in}/v1/payments/{paid.payment_id}").json()
        assert (payment["payment_method"], payment["customer"], payment["amount"]) == (method, customer, 1250)


@pytest.mark.stack
def test_the_vault_keeps_customers_methods_and_a_default_as_the_providers_api_does(stand_in: str) -> None:
    method, customer = save_card(stand_in, "tok_visa")
    second, _ = save_card(stand_in, "tok_visa")
    card = httpx.get(f"{stand_in}/v1/payment_methods/{method}").json()
    assert card["customer"] == customer
    assert card["card"] == {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034, "funding": "credit"}
    refused = write(stand_in, "/v1/payment_methods", {"type": "card", "card": {"token": "tok_nosuch"}})
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "resource_missing")

    taken = write(stand_in, f"/v1/payment_methods/{second}/attach", {"customer": customer})
    assert (taken.status_code, taken.json()["error"]["code"]) == (400, "payment_method_already_attached")
    others = write(stand_in, f"/v1/customers/{customer}", {"invoice_settings": {"default_payment_method": second}})
    assert (others.status_code, others.json()["error"]["code"]) == (400, "payment_method_not_attached")
    chosen = write(stand_in, f"/v1/customers/{customer}", {"invoice_settings": {"default_payment_method": method}})
    assert chosen.json()["invoice_settings"] == {"default_payment_method": method}

    listed = httpx.get(f"{stand_in}/v1/customers/{customer}/payment_methods").json()
    assert (listed["object"], [m["id"] for m in listed["data"]]) == ("list", [method])
    key = uuid.uuid4().hex
    detached = write(stand_in, f"/v1/payment_methods/{method}/detach", {}, key)
    assert detached.json()["customer"] is None
    again = write(stand_in, f"/v1/payment_methods/{method}/detach", {}, key)
    assert (again.json(), again.headers["Idempotent-Replayed"]) == (detached.json(), "true")
    customer_now = httpx.get(f"{stand_in}/v1/customers/{customer}").json()
    assert customer_now["invoice_settings"] == {"default_payment_method": None}, "a detached default is no default"
    assert httpx.get(f"{stand_in}/v1/customers/{customer}/payment_methods").json()["data"] == []
    for missing in ("/v1/customers/cus_nosuch", "/v1/payment_methods/pm_nosuch", "/v1/customers/cus_x/payment_methods"):
        answer = httpx.get(f"{stand_in}{missing}")
        assert (answer.status_code, answer.json()["error"]["code"]) == (404, "resource_missing"), missing


@pytest.mark.stack
def test_calls_out_at_once_are_capped_by_reading_the_oldest_answer_first(stand_in: str) -> None:
    gateway = HttpGateway(stand_in, "test-key", concurrency=2)
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
    binary = tmp_path / "gateway"
    Gateway(settings).build(binary)  # as the stack builds it, from ops/gateway as it is now
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
        method, customer = save_card(url, "tok_visa")
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
        assert httpx.get(f"{url}/v1/payment_methods/{method}", timeout=5).json()["customer"] == customer
    finally:
        process.kill()
        process.wait(10)
    lines = journal.read_text().splitlines()
    assert lines_before == 105, "every write was journalled"
    assert len(lines) == 54, "compacted at start: the 52 payments (50 captured), the customer, its card, no expired key"
    assert sum('"captured"' in line and '"state":"captured"' in line for line in lines) == 50
