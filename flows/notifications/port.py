"""The delivery port (email, SMS, push): the Protocol each channel's adapter implements, and its results.

A recipient the provider refuses for good (a bad address, an unreachable number) is a
``Refused`` result, which the flow turns into ``NotificationFailed``. A transient failure
is retried by the adapter; when retries run out the adapter raises
``flows.exceptions.ChannelUnavailable``, which crashes the step so recovery replays it.
Email carries the notification id as its Message-ID and SMS and push as the provider's
Idempotency-Key, so a replayed delivery is recognisable downstream (SMTP has no
idempotency of its own: a crash between the send and the snapshot can send an email
twice, with the same Message-ID).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Delivered:
    provider_id: str


@dataclass(frozen=True)
class Refused:
    reason: str


Delivery = Delivered | Refused


class Channel(Protocol):
    def deliver(self, notification_id: str, to: str, subject: str, body: str) -> Delivery: ...
