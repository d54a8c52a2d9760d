"""The delivery port (email, SMS, push), its real adapters, and a fake for unit tests.

A recipient the provider refuses for good (a bad address, an unreachable number) is a
``Refused`` result, which the flow turns into ``NotificationFailed``. A transient failure
(connection refused, timeout, 4xx from SMTP, 5xx from HTTP) is retried with backoff; when
retries run out the adapter raises ``ChannelUnavailable``, which crashes the step so
recovery replays it. Email carries the notification id as its Message-ID and SMS and push
as the provider's Idempotency-Key, so a replayed delivery is recognisable downstream
(SMTP has no idempotency of its own: a crash between the send and the snapshot can send an
email twice, with the same Message-ID).
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol, TypeVar

import httpx

from flows.exceptions import ChannelUnavailable

T = TypeVar("T")


@dataclass(frozen=True)
class Delivered:
    provider_id: str


@dataclass(frozen=True)
class Refused:
    reason: str


Delivery = Delivered | Refused


class Channel(Protocol):
    def deliver(self, notification_id: str, to: str, subject: str, body: str) -> Delivery: ...


def with_retries(call: Callable[[], T], transient: tuple[type[Exception], ...], retries: int, what: str) -> T:
    for attempt in range(retries + 1):
        try:
            return call()
        except transient as err:
            if attempt == retries:
                raise ChannelUnavailable(f"{what}: {err}") from err
            time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")


class SmtpEmail:
    """Email through an SMTP relay."""

    def __init__(self, host: str, port: int, sender: str, timeout_s: float = 5.0, retries: int = 3) -> None:
        self.host, self.port, self.sender, self.timeout_s, self.retries = host, port, sender, timeout_s, retries

    def deliver(self, notification_id: str, to: str, subject: str, body: str) -> Delivery:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, to, subject
        message["Message-ID"] = f"<{notification_id}@shopstream>"
        message.set_content(body)

        def send() -> Delivery:
            try:
                with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                    smtp.send_message(message)
            except smtplib.SMTPRecipientsRefused as err:
                codes = [code for code, _ in err.recipients.values()]
                if all(500 <= code < 600 for code in codes):
                    return Refused(f"mailbox refused: {err.recipients}")
                raise
            return Delivered(message["Message-ID"])

        transient = (OSError, smtplib.SMTPException)
        return with_retries(send, transient, self.retries, f"smtp {self.host}:{self.port}")


class HttpMessaging:
    """SMS or push through the provider's HTTP API, one idempotency key per notification."""

    def __init__(self, base_url: str, kind: str, timeout_s: float = 5.0, retries: int = 3) -> None:
        self.kind, self.retries = kind, retries
        self.client = httpx.Client(base_url=base_url, timeout=timeout_s)

    def deliver(self, notification_id: str, to: str, subject: str, body: str) -> Delivery:
        def send() -> Delivery:
            answer = self.client.post(
                "/v1/messages",
                json={"channel": self.kind, "to": to, "body": f"{subject}: {body}" if subject else body},
                headers={"Idempotency-Key": f"{self.kind}:{notification_id}"},
            )
            if answer.status_code >= 500:
                raise httpx.HTTPStatusError("provider error", request=answer.request, response=answer)
            if answer.status_code in (200, 201):
                return Delivered(answer.json()["id"])
            return Refused(answer.json().get("message", f"refused with {answer.status_code}"))

        transient = (httpx.TransportError, httpx.HTTPStatusError)
        return with_retries(send, transient, self.retries, f"{self.kind} provider")


@dataclass
class FakeChannel:
    """In-memory twin of a provider for unit tests: one delivery per notification id, refusals by address."""

    refuse: frozenset[str] = frozenset()
    sent: dict[str, tuple[str, str, str]] = field(default_factory=dict)

    def deliver(self, notification_id: str, to: str, subject: str, body: str) -> Delivery:
        if to in self.refuse:
            return Refused(f"{to} refused")
        self.sent.setdefault(notification_id, (to, subject, body))
        return Delivered(f"fake-{notification_id}")
