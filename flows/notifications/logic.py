"""One user's notifications: contact details from the user events, each notification settled once.

Pure: ``plan`` decides what a message means (update the contact, deliver, or answer a
notification already settled), ``settle`` turns a delivery's result into the event. Email
goes to the user's address, SMS to their phone, push to the user id (the provider keeps
devices). A notification with nowhere to go fails at once, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flows.notifications.port import Delivered, Delivery
from flows.outcome import Send
from topology.messages import (
    Message,
    NotificationFailed,
    NotificationSent,
    ProfileUpdated,
    SendNotification,
    UserRegistered,
)
from topology.topics import NOTIFICATION_EVENTS

MEMORY = 1_000


@dataclass
class Recipient:
    user_id: str
    email: str | None = None
    phone: str | None = None
    settled: dict[str, str | None] = field(default_factory=dict)  # notification id -> failure reason, oldest first


@dataclass(frozen=True)
class Deliver:
    """Send this notification to this address."""

    notification: SendNotification
    to: str


def plan(recipient: Recipient | None, message: Message) -> tuple[Recipient | None, Deliver | list[Send]]:
    match message:
        case UserRegistered():
            recipient = recipient or Recipient(message.user_id)
            recipient.email = message.email
            return recipient, []
        case ProfileUpdated():
            recipient = recipient or Recipient(message.user_id)
            recipient.phone = message.phone
            return recipient, []
        case SendNotification():
            recipient = recipient or Recipient(message.user_id)
            if message.notification_id in recipient.settled:
                return recipient, []  # settled before: its event is on the topic already
            address = {"email": recipient.email, "sms": recipient.phone, "push": recipient.user_id}[message.channel]
            if address is None:
                missing = "email address" if message.channel == "email" else "phone number"
                return settle(recipient, message, f"no {missing} on file for user {message.user_id}")
            return recipient, Deliver(message, address)
    return recipient, []


def settle(
    recipient: Recipient, notification: SendNotification, outcome: Delivery | str
) -> tuple[Recipient, list[Send]]:
    """The event for a delivery's outcome (or a reason it could not be attempted)."""
    if isinstance(outcome, Delivered):
        reason = None
        event: Message = NotificationSent(
            notification_id=notification.notification_id, user_id=notification.user_id, channel=notification.channel
        )
    else:
        reason = outcome if isinstance(outcome, str) else outcome.reason
        event = NotificationFailed(
            notification_id=notification.notification_id,
            user_id=notification.user_id,
            channel=notification.channel,
            reason=reason[:500],
        )
    recipient.settled[notification.notification_id] = reason
    if len(recipient.settled) > MEMORY:
        del recipient.settled[next(iter(recipient.settled))]
    return recipient, [Send(NOTIFICATION_EVENTS, notification.user_id, event)]
