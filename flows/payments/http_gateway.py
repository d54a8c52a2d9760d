"""The payment gateway's real adapter: the provider's HTTP API over kept-alive HTTP/1.1 connections.

Transient failures (timeout, connection error, 429, 5xx) are retried with exponential
backoff under the same idempotency key; when retries run out the call raises
``GatewayUnavailable``.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

from flows.exceptions import GatewayUnavailable
from flows.payments.http1 import Connection, TransportError
from flows.payments.port import Answer, Approved, BegunGateway, Call, Declined, GatewayResult


@dataclass
class _Out:
    """A call whose request is written; its answer (or why the attempt failed) once read."""

    connection: Connection
    ok: tuple[int, ...]
    outcome: GatewayResult | str | None = None


class HttpGateway(BegunGateway):
    """Talks to the provider's HTTP API (in development: the stand-in the stack starts).

    Kept-alive HTTP/1.1 connections (``flows.payments.http1``: one write per request,
    answers parsed by httptools). ``begin`` writes a request on a connection of its own and
    returns; its answer is read when asked for, so a worker can have up to ``concurrency``
    calls out at once on one thread (no thread pool fighting the worker for the GIL). A call
    begun with that many out first reads the oldest one's answer, which waits with its call
    until asked for: the worker never stops to make a call from start to end while others
    are out, however large the batch. A call whose first attempt fails is retried,
    synchronously, under the same key.
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


def _request(call: Call, order_id: str) -> tuple[str, dict[str, object], tuple[int, ...]]:
    """The provider's path, body and success statuses for one call."""
    match call.operation:
        case "authorize":
            assert call.amount is not None
            body: dict[str, object] = {"amount": call.amount.amount, "currency": call.amount.currency}
            if call.payment_method is not None:  # a saved method is charged with the customer it is attached to
                body |= {"payment_method": call.payment_method, "customer": call.customer}
            else:
                assert call.token is not None
                body["token"] = call.token
            return "/v1/payments", {**body, "order_id": order_id}, (201,)
        case "capture" | "void":
            return f"/v1/payments/{call.payment_id}/{call.operation}", {}, (200,)
        case "refund":
            assert call.amount is not None
            return f"/v1/payments/{call.payment_id}/refunds", {"amount": call.amount.amount}, (201,)
