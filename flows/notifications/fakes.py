"""A hand-written fake of a delivery channel for unit tests; it passes the same contract tests as the real adapters."""

from __future__ import annotations

from dataclasses import dataclass, field

from flows.notifications.port import Delivered, Delivery, Refused


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
