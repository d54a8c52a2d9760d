"""The notifications flow: the delivery port against a fake and the real providers, and the dataflow."""

from __future__ import annotations

import email
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from bytewax.connectors.kafka import KafkaSinkMessage
from bytewax.testing import TestingSink, TestingSource

from flows.exceptions import ChannelUnavailable
from flows.notifications.fakes import FakeChannel
from flows.notifications.flow import build_flow
from flows.notifications.messaging import HttpMessaging
from flows.notifications.port import Channel, Delivered, Refused
from flows.notifications.smtp import SmtpEmail
from tests.support.dataflows import RUNNERS, SETTINGS, Runner, outputs, raw, record
from tests.support.processes import free_port
from topology.messages import ProfileUpdated, SendNotification, UserRegistered
from topology.settings import Settings
from topology.topics import NOTIFICATION_COMMANDS, USER_EVENTS


def note(user: str, channel: str = "email", notification_id: str | None = None) -> SendNotification:
    return SendNotification(
        notification_id=notification_id or uuid.uuid4().hex,
        user_id=user,
        channel=channel,  # type: ignore[arg-type]
        template="order_confirmed",
        subject="Order o1",
        body="Your order o1 is confirmed.",
    )


class MessagingContract:
    """What the flow relies on from an SMS or push provider, fake or real."""

    @pytest.fixture
    def channel(self) -> Iterator[Channel]:
        raise NotImplementedError

    def delivered_to(self, notification_id: str) -> list[str]:
        raise NotImplementedError

    def test_a_delivery_happens_once_per_notification(self, channel: Channel) -> None:
        nid = uuid.uuid4().hex
        first = channel.deliver(nid, "+4930111222", "Order o1", f"confirmed {nid}")
        again = channel.deliver(nid, "+4930111222", "Order o1", f"confirmed {nid}")
        assert isinstance(first, Delivered)
        assert again == first
        assert self.delivered_to(nid) == ["+4930111222"]

    def test_an_unreachable_number_is_refused_as_data(self, channel: Channel) -> None:
        assert isinstance(channel.deliver(uuid.uuid4().hex, "+15550001111", "s", "b"), Refused)


class TestFakeMessaging(MessagingContract):
    fake = FakeChannel(refuse=frozenset({"+15550001111"}))

    @pytest.fixture
    def channel(self) -> Iterator[Channel]:
        yield self.fake

    def delivered_to(self, notification_id: str) -> list[str]:
        return [self.fake.sent[notification_id][0]] if notification_id in self.fake.sent else []


@pytest.mark.stack
class TestHttpMessaging(MessagingContract):
    @pytest.fixture
    def channel(self, settings: Settings) -> Iterator[Channel]:
        self.url = settings.messaging_url
        yield HttpMessaging(settings.messaging_url, "sms")

    def delivered_to(self, notification_id: str) -> list[str]:
        sent = httpx.get(f"{self.url}/_admin/messages", timeout=10).json()
        return [m["to"] for m in sent if notification_id in m["body"]]


@pytest.mark.stack
def test_email_goes_through_the_real_smtp_server_with_the_notification_id(settings: Settings) -> None:
    nid = uuid.uuid4().hex
    sent_at = time.time() - 1  # only what arrived since is read: a long-lived stack's Maildir holds every mail
    smtp = SmtpEmail(*settings.smtp_address, settings.mail_sender)
    assert smtp.deliver(nid, "ann@example.com", "Order o1", "confirmed") == Delivered(f"<{nid}@shopstream>")
    maildir = settings.stack_dir / "data" / "smtp" / "maildir" / "new"
    deadline = time.monotonic() + 5
    while True:
        new = [p for p in maildir.iterdir() if p.stat().st_mtime >= sent_at]
        found = [email.message_from_bytes(p.read_bytes()) for p in new]
        mine = [m for m in found if m["Message-ID"] == f"<{nid}@shopstream>"]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [(m["To"], m["Subject"]) for m in mine] == [("ann@example.com", "Order o1")]


@pytest.mark.parametrize(
    "make",
    [
        lambda port: SmtpEmail("127.0.0.1", port, "a@b.c", timeout_s=0.5, retries=1),
        lambda port: HttpMessaging(f"http://127.0.0.1:{port}", "push", timeout_s=0.5, retries=1),
    ],
    ids=["smtp", "http"],
)
def test_a_provider_that_stays_away_is_an_infrastructure_failure(make: Callable[[int], Channel]) -> None:
    with pytest.raises(ChannelUnavailable):
        make(free_port()).deliver("n1", "x@example.com", "s", "b")


@pytest.mark.parametrize("runner", RUNNERS.values(), ids=RUNNERS.keys())
def test_notifications_reach_the_users_contact_once_or_fail_with_a_reason(runner: Runner) -> None:
    email_channel, sms = FakeChannel(refuse=frozenset({"bob@example.com"})), FakeChannel()
    confirmed = note("ann", notification_id="o1.order_confirmed")
    items: list[Any] = [
        record(USER_EVENTS, "ann", UserRegistered(user_id="ann", email="ann@example.com", name="Ann"), 0),
        record(USER_EVENTS, "bob", UserRegistered(user_id="bob", email="bob@example.com", name="Bob"), 1),
        record(NOTIFICATION_COMMANDS, "ann", confirmed, 2),
        record(NOTIFICATION_COMMANDS, "ann", confirmed, 3),  # the same notification again
        record(NOTIFICATION_COMMANDS, "ann", note("ann", "sms", "ann-sms-1"), 4),  # no phone yet
        record(USER_EVENTS, "ann", ProfileUpdated(user_id="ann", name="Ann", phone="+4930123456"), 5),
        record(NOTIFICATION_COMMANDS, "ann", note("ann", "sms", "ann-sms-2"), 6),
        record(NOTIFICATION_COMMANDS, "bob", note("bob", "email", "bob-1"), 7),  # the mailbox refuses
        raw(NOTIFICATION_COMMANDS, "x", b"[]", 8),
    ]
    out: list[KafkaSinkMessage] = []
    channels: dict[str, Channel] = {"email": email_channel, "sms": sms, "push": FakeChannel()}
    runner(build_flow(TestingSource(items), TestingSink(out), SETTINGS, channels=channels))
    events, dead = outputs(out)
    outcome = {e.payload.notification_id: (e.type, getattr(e.payload, "reason", None)) for _, e in events}
    assert outcome == {
        "o1.order_confirmed": ("NotificationSent", None),
        "ann-sms-1": ("NotificationFailed", "no phone number on file for user ann"),
        "ann-sms-2": ("NotificationSent", None),
        "bob-1": ("NotificationFailed", "bob@example.com refused"),
    }
    assert len(events) == 4, "the repeated notification emits nothing new"
    assert email_channel.sent == {"o1.order_confirmed": ("ann@example.com", "Order o1", confirmed.body)}
    assert list(sms.sent) == ["ann-sms-2"]
    assert sorted(e.seq for _, e in events if e.payload.user_id == "ann") == [1, 2, 3]  # type: ignore[attr-defined]
    assert [d.offset for _, d in dead] == [8]


class Sessions:
    """An aiosmtpd handler that remembers which SMTP session (connection) carried each message."""

    def __init__(self) -> None:
        self.by_message: list[int] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.by_message.append(id(session))
        return "250 OK"


def test_email_reuses_one_connection_and_replaces_one_the_relay_closed() -> None:
    from aiosmtpd.controller import Controller

    port = free_port()
    first, second = Sessions(), Sessions()
    relay = Controller(first, hostname="127.0.0.1", port=port)
    relay.start()
    smtp = SmtpEmail("127.0.0.1", port, "shop@example.com", timeout_s=2, retries=0)
    try:
        for n in range(3):
            assert smtp.deliver(f"n{n}", "ann@example.com", "s", "b") == Delivered(f"<n{n}@shopstream>")
        assert len(first.by_message) == 3
        assert len(set(first.by_message)) == 1, "three messages over one connection"
        relay.stop()  # the relay goes away and comes back: the kept connection is dead
        relay = Controller(second, hostname="127.0.0.1", port=port)
        relay.start()
        assert smtp.deliver("n3", "ann@example.com", "s", "b") == Delivered("<n3@shopstream>")
        assert len(second.by_message) == 1, "with no retries left, the dead connection was replaced at once"
    finally:
        smtp.close()
        relay.stop()
