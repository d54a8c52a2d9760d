"""`shopstream dlq ...` against the real broker: list, show, replay once, purge, bad input."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Consumer, Producer

from ops.dlq import parse_since
from ops.exceptions import OpsError
from ops.partners import add_partner
from tests.support.cli import Cli
from tests.support.scope import Scope
from topology.access import OPERATOR
from topology.dlq import H_REPLAYED_FROM, DeadLetter
from topology.envelope import decode
from topology.exceptions import DecodeError
from topology.kafka_client import client_config
from topology.settings import Settings
from topology.topics import PARTNER_COMMANDS

pytestmark = pytest.mark.stack
POISON = b'{"id": "p-1", "type": "PlaceOrder", "payload": {"order_id": 42}}'


@pytest.fixture
def env(settings: Settings, ns: Scope) -> tuple[Cli, str, Settings]:
    """The CLI under the test's topic prefix with the topology applied (its topics go with the scope)."""
    prefix = ns.settings.topic_prefix
    cli = Cli({"SHOP_TOPIC_PREFIX": prefix})
    assert cli("topology", "apply").exit_code == 0
    return cli, prefix, settings.model_copy(update={"topic_prefix": prefix})


def read_all(settings: Settings, topic: str, expected: int) -> list:  # type: ignore[type-arg]
    consumer = Consumer(
        {
            **client_config(settings, OPERATOR),
            "group.id": f"read-{time.time_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    found = []
    deadline = time.monotonic() + 20
    while len(found) < expected and time.monotonic() < deadline:
        found += [m for m in consumer.consume(100, timeout=0.5) if m.error() is None]
    time.sleep(0.5)
    found += [m for m in consumer.consume(100, timeout=0.5) if m.error() is None]
    consumer.close()
    return found


def failing_stage(settings: Settings, topic: str, dlq_topic: str | None = None) -> None:
    """What every stage does with a record it cannot process: decode, fail, dead-letter it with the reason."""
    consumer = Consumer(
        {
            **client_config(settings, OPERATOR),
            "group.id": f"stage-{time.time_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    producer = Producer({**client_config(settings, OPERATOR), "enable.idempotence": True})
    deadline = time.monotonic() + 20
    handled = 0
    while handled == 0 and time.monotonic() < deadline:
        for msg in consumer.consume(10, timeout=0.5):
            try:
                decode(msg.value(), strict=True)
            except DecodeError as err:
                letter = DeadLetter(
                    msg.topic(), msg.partition(), msg.offset(), str(err), "test-stage", 1, datetime.now(UTC)
                )
                producer.produce(
                    dlq_topic or letter.dead_letter_topic,
                    msg.value(),
                    key=msg.key(),
                    headers=letter.headers(msg.headers()),
                )
            handled += 1
    assert producer.flush(10) == 0
    consumer.close()
    assert handled == 1


def test_poison_message_is_listed_shown_and_replayed_once(env: tuple[Cli, str, Settings]) -> None:
    cli, prefix, settings = env
    topic = add_partner(settings, "p1").topic  # a partner's topic; its records fail to the partners' one DLQ
    producer = Producer({**client_config(settings, OPERATOR)})
    producer.produce(topic, POISON, key=b"o-42", headers=[("traceparent", b"00-abc")])
    assert producer.flush(10) == 0
    failing_stage(settings, topic, PARTNER_COMMANDS.dead_letter.name_for(prefix))  # type: ignore[union-attr]

    listed = cli("dlq", "list", "--json")
    assert listed.exit_code == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["original_topic"] == topic
    assert row["original_offset"] == 0
    assert row["stage"] == "test-stage"
    assert "not a valid envelope" in row["error"]
    assert row["replayed"] is None
    text = cli("dlq", "list")
    assert row["id"] in text.stdout
    assert "not a valid envelope" in text.stdout

    shown = json.loads(cli("dlq", "show", row["id"], "--json").stdout)
    assert shown["value"] == POISON.decode()
    assert shown["key"] == "o-42"
    assert shown["headers"]["traceparent"] == "00-abc"

    first = json.loads(cli("dlq", "replay", "--id", row["id"], "--json").stdout)
    assert [r["outcome"] for r in first] == ["replayed"]
    second = cli("dlq", "replay", "--topic", "shop.partner.commands", "--json")
    assert [r["outcome"] for r in json.loads(second.stdout)] == ["already replayed"]
    assert json.loads(cli("dlq", "list", "--json").stdout)[0]["replayed"]["topic"] == topic

    redelivered = read_all(settings, topic, 2)
    assert [m.value() for m in redelivered] == [POISON, POISON], "replayed once, not twice"
    assert dict(redelivered[1].headers())[H_REPLAYED_FROM] == row["id"].encode()
    assert dict(redelivered[1].headers())["traceparent"] == b"00-abc"


def test_an_undecodable_dlq_record_is_listed_not_fatal(env: tuple[Cli, str, Settings]) -> None:
    cli, prefix, settings = env
    dlq_topic = PARTNER_COMMANDS.dead_letter.name_for(prefix)  # type: ignore[union-attr]
    producer = Producer({**client_config(settings, OPERATOR)})
    producer.produce(dlq_topic, b"\x00\xffgarbage", headers=[("dlq.error", b"half a header set")])
    assert producer.flush(10) == 0
    [row] = json.loads(cli("dlq", "list", "--json").stdout)
    assert "undecodable DLQ record: missing headers" in row["error"]
    assert row["original_topic"] is None
    shown = json.loads(cli("dlq", "show", row["id"], "--json").stdout)
    assert shown["value"].startswith("base64:")
    replay = cli("dlq", "replay", "--json")
    assert replay.exit_code == 1
    assert json.loads(replay.stdout)[0]["outcome"] == "skipped"


def test_purge_deletes_only_records_older_than_the_cutoff(env: tuple[Cli, str, Settings]) -> None:
    cli, prefix, settings = env
    dlq_topic = PARTNER_COMMANDS.dead_letter.name_for(prefix)  # type: ignore[union-attr]
    producer = Producer({**client_config(settings, OPERATOR)})
    old = int((datetime.now(UTC) - timedelta(days=10)).timestamp() * 1000)
    letter = DeadLetter(PARTNER_COMMANDS.for_partner("p1").name_for(prefix), 0, 7, "bad", "s", 1, datetime.now(UTC))
    for i in range(3):
        producer.produce(dlq_topic, b"old", partition=0, timestamp=old + i, headers=letter.headers())
    producer.produce(dlq_topic, b"new", partition=0, headers=letter.headers())
    assert producer.flush(10) == 0
    purged = json.loads(cli("dlq", "purge", "--before", "7d", "--json").stdout)
    assert {r["partition"]: r["deleted"] for r in purged if r["deleted"]} == {f"{dlq_topic}/0": 3}
    left = json.loads(cli("dlq", "list", "--json").stdout)
    assert [r["id"] for r in left] == [f"{dlq_topic}/0/3"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("dlq", "list", "--topic", "shop.nowhere"), "unknown topic 'shop.nowhere'"),
        (("dlq", "list", "--since", "yesterday"), "bad time 'yesterday'"),
        (("dlq", "list", "--since", "2026-11-01T10:00:00"), "no time zone"),
        (("dlq", "show", "not-an-id"), "bad DLQ id"),
        (("dlq", "show", "shop.orders.commands/0/0"), "is not a dead letter topic"),
        (("dlq", "purge", "--before", "soon"), "bad time 'soon'"),
    ],
)
def test_bad_input_is_a_usage_error(env: tuple[Cli, str, Settings], args: tuple[str, ...], message: str) -> None:
    cli, _, _ = env
    result = cli(*args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_show_of_a_missing_record(env: tuple[Cli, str, Settings]) -> None:
    cli, prefix, _ = env
    result = cli("dlq", "show", f"{prefix}shop.orders.commands.dlq/0/99")
    assert result.exit_code == 2
    assert "no DLQ record" in result.stderr


def test_parse_since_accepts_durations_and_aware_times() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert parse_since("90s", now) == now - timedelta(seconds=90)
    assert parse_since("2h", now) == now - timedelta(hours=2)
    assert parse_since("2026-11-24T00:00:00+01:00", now) == datetime(2026, 11, 23, 23, 0, tzinfo=UTC)
    with pytest.raises(OpsError):
        parse_since("3 weeks", now)
