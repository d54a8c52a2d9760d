"""The payment gateway port, its real HTTP adapter, and a fake for unit tests.

A permanent failure (a decline, a refused state change) is a ``Declined`` result, which
the flow turns into an event. A transient failure (timeout, connection error, 5xx) is
retried with exponential backoff under the same idempotency key; when retries run out
the adapter raises ``GatewayUnavailable``, an infrastructure failure that crashes the
step so recovery replays it, with the same key, later.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol
from urllib.parse import urlsplit

from flows.exceptions import GatewayUnavailable
from flows.payments.http1 import Connection, TransportError
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
    """One gateway operation under its idempotency key."""

    operation: Operation
    key: str
    amount: Money | None = None
    token: str | None = None
    payment_id: str | None = None


class PaymentGateway(Protocol):
    def authorize(self, key: str, order_id: str, amount: Money, token: str) -> GatewayResult: ...
    def capture(self, key: str, payment_id: str) -> GatewayResult: ...
    def void(self, key: str, payment_id: str) -> GatewayResult: ...
    def refund(self, key: str, payment_id: str, amount: Money) -> GatewayResult: ...

    def begin(self, call: Call, order_id: str) -> Answer:
        """Start a call and return how to wait for its result, so several calls can be out at once."""
        ...


def dispatch(gateway: PaymentGateway, call: Call, order_id: str) -> GatewayResult:
    """One call through the port's synchronous methods."""
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


@dataclass
class _Out:
    """A call whose request is written; its answer (or why the attempt failed) once read."""

    connection: Connection
    ok: tuple[int, ...]
    outcome: GatewayResult | str | None = None


class HttpGateway:
    """Talks to the provider's HTTP API (in development: the stand-in the stack starts).

    Kept-alive HTTP/1.1 connections (``flows.payments.http1``: one write per request,
    answers parsed by httptools). ``begin`` writes a request on a connection of its own and
    returns; its answer is read when asked for, so a worker can have up to ``concurrency``
    calls out at once on one thread (no thread pool fighting the worker for the GIL). A call
    begun with that many out first reads the oldest one's answer, which waits with its call
    until asked for: the worker never stops to make a call from start to end while others
    are out (it did, and a batch larger than ``concurrency`` was made one call at a time). A
    call whose first attempt fails is retried, synchronously, under the same key.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        timeout_s: float = 2.0,
        retries: int = 4,
        backoff_s: float = 0.05,
        concurrency: int = 16,
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"gateway URL {base_url!r} is not http(s)://host[:port]")
        self.scheme, self.host, self.port = url.scheme, url.hostname, url.port
        self.prefix = url.path.rstrip("/")
        self.timeout_s = timeout_s
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self.retries, self.backoff_s, self.concurrency = retries, backoff_s, concurrency
        self.idle: list[Connection] = []
        self.out: deque[_Out] = deque()  # calls begun whose answer has not been read yet, oldest first

    def _send(self, path: str, key: str, payload: bytes) -> Connection:
        connection = self.idle.pop() if self.idle else None
        try:
            connection = connection or Connection(self.scheme, self.host, self.port, self.timeout_s)
            connection.send("POST", self.prefix + path, {**self.headers, "Idempotency-Key": key}, payload)
        except TransportError:
            if connection is not None:
                connection.close()  # a broken connection is never reused
            raise
        return connection

    def _receive(self, connection: Connection, ok: tuple[int, ...]) -> GatewayResult | str:
        """The result, or why the attempt failed in a way worth retrying."""
        try:
            reply = connection.receive()
        except TransportError as err:
            connection.close()  # a broken or timed-out connection is never reused
            return f"{type(err).__name__}: {err}"
        if connection.reusable:
            self.idle.append(connection)
        else:
            connection.close()
        if reply.status in ok:
            body = json.loads(reply.body)
            return Approved(str(body["payment"]["id"] if "payment" in body else body.get("id")))
        if reply.status < 500 and reply.status != 429:
            error = json.loads(reply.body).get("error", {}) if reply.content_type.startswith("application/json") else {}
            code = error.get("code") if isinstance(error, dict) else None
            return Declined(str(code or f"http {reply.status}"))
        return f"http {reply.status}"

    def _read(self, out: _Out) -> None:
        """Read a call's answer off its connection; it waits with the call until asked for."""
        out.outcome = self._receive(out.connection, out.ok)

    def _retry(self, path: str, key: str, payload: bytes, ok: tuple[int, ...], first: int, last: str) -> GatewayResult:
        for attempt in range(first, self.retries + 1):
            if attempt > 0:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                connection = self._send(path, key, payload)
            except TransportError as err:
                last = f"{type(err).__name__}: {err}"
                continue
            outcome = self._receive(connection, ok)
            if not isinstance(outcome, str):
                return outcome
            last = outcome
        raise GatewayUnavailable(f"payment gateway {path} failed after {self.retries + 1} attempts: {last}")

    def begin(self, call: Call, order_id: str) -> Answer:
        path, body, ok = _request(call, order_id)
        key = call.key
        payload = json.dumps(body).encode()
        if len(self.out) >= self.concurrency:  # enough calls out: the oldest one's answer frees a connection
            self._read(self.out.popleft())
        try:
            connection = self._send(path, key, payload)
        except TransportError as err:
            failed = f"{type(err).__name__}: {err}"
            return lambda: self._retry(path, key, payload, ok, 1, failed)
        out = _Out(connection, ok)
        self.out.append(out)

        def finish() -> GatewayResult:
            if out.outcome is None:
                self.out.remove(out)
                self._read(out)
            outcome = out.outcome
            assert outcome is not None
            return self._retry(path, key, payload, ok, 1, outcome) if isinstance(outcome, str) else outcome

        return finish

    def authorize(self, key: str, order_id: str, amount: Money, token: str) -> GatewayResult:
        return self.begin(Call("authorize", key, amount=amount, token=token), order_id)()

    def capture(self, key: str, payment_id: str) -> GatewayResult:
        return self.begin(Call("capture", key, payment_id=payment_id), "")()

    def void(self, key: str, payment_id: str) -> GatewayResult:
        return self.begin(Call("void", key, payment_id=payment_id), "")()

    def refund(self, key: str, payment_id: str, amount: Money) -> GatewayResult:
        return self.begin(Call("refund", key, amount=amount, payment_id=payment_id), "")()


def _request(call: Call, order_id: str) -> tuple[str, dict[str, object], tuple[int, ...]]:
    """The provider's path, body and success statuses for one call."""
    match call.operation:
        case "authorize":
            assert call.amount is not None and call.token is not None
            amount = call.amount
            body = {"amount": amount.amount, "currency": amount.currency, "token": call.token, "order_id": order_id}
            return "/v1/payments", body, (201,)
        case "capture" | "void":
            return f"/v1/payments/{call.payment_id}/{call.operation}", {}, (200,)
        case "refund":
            assert call.amount is not None
            return f"/v1/payments/{call.payment_id}/refunds", {"amount": call.amount.amount}, (201,)


@dataclass
class FakeGateway:
    """In-memory twin of the provider for unit tests: idempotency keys, declines, states."""

    declined_tokens: frozenset[str] = frozenset({"tok_decline", "tok_insufficient"})
    answers: dict[str, GatewayResult] = field(default_factory=dict)
    payments: dict[str, dict[str, int | str]] = field(default_factory=dict)

    def begin(self, call: Call, order_id: str) -> Answer:
        result = dispatch(self, call, order_id)
        return lambda: result

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
