"""SMS and push through the messaging provider's HTTP API: those channels' real adapter.

Transport errors and 5xx answers are transient and retried; any other refusal is
``Refused`` for good.
"""

from __future__ import annotations

import httpx

from flows.notifications.port import Delivered, Delivery, Refused
from flows.notifications.retries import with_retries


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
