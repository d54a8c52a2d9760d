"""`shopstream topology ...` against the real broker, each test under its own topic prefix."""

from __future__ import annotations

import json
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from ops.kafka_admin import acls_enforced
from tests.support.cli import Cli
from tests.support.scope import Scope
from topology.access import OPERATOR
from topology.kafka_client import client_config
from topology.processes import PROCESSES
from topology.settings import Settings
from topology.topics import ORDER_COMMANDS, ORDER_EVENTS, all_topics

pytestmark = pytest.mark.stack


@pytest.fixture
def prefixed(settings: Settings, ns: Scope) -> tuple[Cli, str, AdminClient]:
    """The CLI under the test's topic prefix (its topics go with the scope), and an admin client."""
    prefix = ns.settings.topic_prefix
    admin = AdminClient({**client_config(settings, OPERATOR)})
    return Cli({"SHOP_TOPIC_PREFIX": prefix}), prefix, admin


def prefixed_settings(prefix: str) -> Settings:
    return Settings.from_env().model_copy(update={"topic_prefix": prefix})


def wait_visible(admin: AdminClient, partitions: dict[str, int]) -> None:
    """Topic changes reach the broker's metadata a moment after the controller acknowledges them."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        meta = admin.list_topics(timeout=10)
        if all(t in meta.topics and len(meta.topics[t].partitions) == n for t, n in partitions.items()):
            return
        time.sleep(0.1)
    raise AssertionError(f"the broker never showed {partitions}")


def test_apply_creates_everything_then_is_idempotent(prefixed: tuple[Cli, str, AdminClient]) -> None:
    cli, prefix, admin = prefixed
    dry = cli("topology", "apply", "--dry-run", "--json")
    assert dry.exit_code == 0
    planned = json.loads(dry.stdout)
    assert {s["action"] for s in planned if not s["topic"].startswith("User:")} == {"create"}
    acls = {s["action"] for s in planned if s["topic"].startswith("User:")}
    assert acls == ({"grant"} if acls_enforced(prefixed_settings(prefix)) else set()), "each process's ACLs"
    assert not any(t.startswith(prefix) for t in admin.list_topics(timeout=10).topics), "dry run changed the broker"

    first = cli("topology", "apply")
    assert first.exit_code == 0, first.stdout
    meta = admin.list_topics(timeout=10)
    for topic in all_topics():
        name = topic.name_for(prefix)
        assert name in meta.topics
        assert len(meta.topics[name].partitions) == topic.partitions

    again = json.loads(cli("topology", "apply", "--json").stdout)
    assert {s["action"] for s in again} == {"ok"}
    assert not any(s["done"] for s in again)

    described = cli("topology", "describe")
    for topic in all_topics():
        assert topic.name_for(prefix) in described.stdout


def test_apply_raises_partitions_and_reports_drift_it_will_not_fix(prefixed: tuple[Cli, str, AdminClient]) -> None:
    cli, prefix, admin = prefixed
    small = ORDER_COMMANDS.name_for(prefix)
    big = ORDER_EVENTS.name_for(prefix)
    stray = f"{prefix}shop.legacy.thing"
    futures = admin.create_topics(
        [
            NewTopic(small, 2, 1, config=ORDER_COMMANDS.config),
            NewTopic(big, 12, 1, config={"cleanup.policy": "compact"}),
            NewTopic(stray, 1, 1),
        ]
    )
    for future in futures.values():
        future.result(timeout=15)
    wait_visible(admin, {small: 2, big: 12, stray: 1})
    steps = {
        s["topic"]: s
        for s in json.loads(cli("topology", "apply", "--json").stdout)
        if s["topic"] in (small, big, stray)
    }
    assert steps[small]["action"] == "raise-partitions"
    assert steps[small]["done"] is True
    assert steps[stray]["action"] == "undeclared"
    big_steps = [s for s in json.loads(cli("topology", "apply", "--json", "--dry-run").stdout) if s["topic"] == big]
    details = " ".join(s["detail"] for s in big_steps)
    assert "has 12 partitions, declared 6" in details
    assert "cleanup.policy=compact (declared delete)" in details
    wait_visible(admin, {small: ORDER_COMMANDS.partitions, big: 12, stray: 1})  # raised; big and stray untouched


def test_lag_reports_committed_end_and_lag(settings: Settings, prefixed: tuple[Cli, str, AdminClient]) -> None:
    cli, prefix, _ = prefixed
    assert cli("topology", "apply").exit_code == 0
    topic = ORDER_COMMANDS.name_for(prefix)
    producer = Producer({**client_config(settings, OPERATOR)})
    for i in range(10):
        producer.produce(topic, b"x", partition=0, key=str(i).encode())
    assert producer.flush(10) == 0
    group = next(p for p in PROCESSES if p.name == "orders").group_for(prefix)
    consumer = Consumer({**client_config(settings, OPERATOR), "group.id": group})
    consumer.commit(offsets=[TopicPartition(topic, 0, 4)], asynchronous=False)
    consumer.close()
    rows = json.loads(cli("topology", "lag", "--group", group, "--json").stdout)
    row = next(r for r in rows if r["topic"] == topic and r["partition"] == 0)
    assert (row["committed"], row["end"], row["lag"]) == (4, 10, 6)

    health = cli("topology", "health")
    assert health.exit_code == 1, "a group with no members and records waiting is stalled"
    assert "stalled" in health.stdout


def test_lag_of_an_unknown_group_is_a_usage_error(prefixed: tuple[Cli, str, AdminClient]) -> None:
    cli, _, _ = prefixed
    result = cli("topology", "lag", "--group", "no-such-group")
    assert result.exit_code == 2
    assert "unknown consumer group no-such-group" in result.stderr


def test_health_is_ok_when_everything_is_up(prefixed: tuple[Cli, str, AdminClient]) -> None:
    cli, _, _ = prefixed
    result = cli("topology", "health", "--json")
    assert result.exit_code == 0, result.stdout
    rows = json.loads(result.stdout)
    assert {r["name"] for r in rows if r["kind"] == "server"} >= {"kafka", "postgres", "redis", "search", "mongo"}
    assert len([r for r in rows if r["kind"] == "group"]) == len([p for p in PROCESSES if p.group])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("args", [("topology", "apply"), ("topology", "lag"), ("dlq", "list")])
def test_an_unreachable_broker_is_a_clear_error_not_a_hang(args: tuple[str, ...]) -> None:
    result = Cli({"SHOP_KAFKA_PORT": "1"})(*args)
    assert result.exit_code == 1
    assert "did not answer" in result.stderr
    assert "shopstream stack up" in result.stderr


def test_graph_cli_writes_mermaid_and_dot(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cli = Cli({})
    assert cli("topology", "graph").stdout.startswith("flowchart LR")
    out = tmp_path / "g.dot"
    assert cli("topology", "graph", "--format", "dot", "-o", str(out)).exit_code == 0
    assert out.read_text().startswith("digraph shopstream")
    bad = cli("topology", "graph", "--format", "png")
    assert bad.exit_code == 2
