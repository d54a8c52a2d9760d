"""Notifications by email, SMS or push, keyed by recipient."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from topology.messages.base import Command, Event, Id, Reason, Text

Channel = Literal["email", "sms", "push"]


class SendNotification(Command, frozen=True, kw_only=True):
    notification_id: Id
    user_id: Id
    channel: Channel
    template: Annotated[str, msgspec.Meta(max_length=64)]
    subject: Annotated[str, msgspec.Meta(max_length=200)] = ""
    body: Text


class NotificationSent(Event, frozen=True, kw_only=True):
    notification_id: Id
    user_id: Id
    channel: Channel


class NotificationFailed(Event, frozen=True, kw_only=True):
    notification_id: Id
    user_id: Id
    channel: Channel
    reason: Reason
