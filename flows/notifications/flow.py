"""Wiring of the notifications flow. Step ids are a state contract: never rename one without a migration note.

Run: ``python -m flows run notifications`` (``shopstream flow notifications``).
"""

from __future__ import annotations

from typing import Any

from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from flows import templates, tracing
from flows.envelopes import Incoming
from flows.metrics import MeasuredChannel
from flows.notifications import logic
from flows.notifications.messaging import HttpMessaging
from flows.notifications.port import Channel
from flows.notifications.smtp import SmtpEmail
from flows.outcome import Send
from topology.messages import ProfileUpdated, SendNotification, UserRegistered
from topology.settings import Settings

SERVICE = "notifications"
ACCEPTS = (SendNotification, UserRegistered, ProfileUpdated)


def channels_for(settings: Settings) -> dict[str, Channel]:
    host, port = settings.smtp_address
    timeout, retries = settings.notify_timeout_s, settings.notify_retries
    return {  # each counted and timed (flows/metrics.py)
        "email": MeasuredChannel("email", SmtpEmail(host, port, settings.mail_sender, timeout, retries)),
        "sms": MeasuredChannel("sms", HttpMessaging(settings.messaging_url, "sms", timeout, retries)),
        "push": MeasuredChannel("push", HttpMessaging(settings.messaging_url, "push", timeout, retries)),
    }


def build_flow(
    source: Source[Any] | None = None,
    sink: Sink[Any] | None = None,
    settings: Settings | None = None,
    channels: dict[str, Channel] | None = None,
) -> Dataflow:
    begun = templates.start(SERVICE, source, settings)
    opened: dict[str, Channel] = dict(channels or {})

    def channel(name: str) -> Channel:  # opened on first use in the worker, never at import
        if name not in opened:
            opened.update(tracing.traced_channels(channels_for(begun.settings), SERVICE))
        return opened[name]

    def handle(recipient: logic.Recipient | None, item: Incoming) -> tuple[logic.Recipient | None, list[Send]]:
        recipient, plan = logic.plan(recipient, item.envelope.payload)
        if isinstance(plan, logic.Deliver):
            note = plan.notification
            outcome = channel(note.channel).deliver(note.notification_id, plan.to, note.subject, note.body)
            assert recipient is not None
            return logic.settle(recipient, note, outcome)
        return recipient, plan

    return templates.entity_flow(
        begun,
        ACCEPTS,
        "recipient",
        "user_id",
        handle,
        sink,
    )
