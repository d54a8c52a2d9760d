"""The broker authenticates every client (SCRAM-SHA-512) and each principal may do what its process needs, no more.

Against the real broker: the shared one when it runs with SASL, else a private one started
for this module (a broker started before SASL has no authorizer to test).
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from pydantic import SecretStr

from ops import kafka_access
from ops.kafka_admin import BrokerUnreachable, acl_filter, acls_enforced, admin_client
from ops.stack.kafka import LOG_CONFIG, SCRAM_MARKER, Kafka, java_binary
from ops.stack.launcher import Stack
from ops.topology_admin import apply
from tests.support.processes import free_port
from tests.support.scope import Scope
from topology.access import OPERATOR, PRINCIPALS, Grant, principal_of
from topology.kafka_client import client_config
from topology.processes import PROCESSES
from topology.settings import Settings
from topology.topics import ORDER_COMMANDS, ORDER_EVENTS, PARTNER_COMMANDS, USER_COMMANDS, USER_EVENTS

pytestmark = pytest.mark.stack


def private_kafka(settings: Settings, root: Path) -> Settings:
    """Settings of a Kafka of its own under ``root`` (the other servers: the shared stack's)."""
    return settings.model_copy(
        update={
            "stack_dir": root,
            "tools_dir": settings.tools_dir or settings.stack_dir / "tools",
            "kafka_port": free_port(),
            "kafka_controller_port": free_port(),
            "kafka_security": "auto",
            "health_timeout_s": 120,
        }
    )


@pytest.fixture(scope="module")
def secured(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    if acls_enforced(settings):
        yield settings
        return
    private = private_kafka(settings, tmp_path_factory.mktemp("secured-kafka"))
    stack = Stack(private, only=("kafka",))
    try:
        failed = [row for row in stack.up() if not row.ok]
        assert not failed, failed
        yield private
    finally:
        stack.down()


@pytest.fixture
def env(secured: Settings) -> Iterator[Scope]:
    """A prefix of the test's own on the secured broker, with the topology and its ACLs applied."""
    scope = Scope(secured)
    apply(scope.settings)
    yield scope
    scope.close()


def as_principal(settings: Settings, principal: str, **extra: object) -> dict[str, object]:
    return {**client_config(settings, principal), "log_level": 0, **extra}


def produce_error(settings: Settings, principal: str, topic: str) -> KafkaError | None:
    """What the broker answered a record from ``principal`` to ``topic`` (None: accepted)."""
    producer = Producer(as_principal(settings, principal, **{"message.timeout.ms": 10_000}))
    answers: list[KafkaError | None] = []
    producer.produce(topic, b"probe", key=b"probe", on_delivery=lambda err, _msg: answers.append(err))
    producer.flush(15)
    assert answers, "the producer got no answer at all"
    return answers[0]


def read_error(settings: Settings, principal: str, topic: str, group: str | None = None) -> KafkaError | None:
    """The error ``principal`` meets reading ``topic`` from its start in ``group`` (None: it reads a record)."""
    consumer = Consumer(
        as_principal(settings, principal, **{"group.id": group or f"probe-{uuid.uuid4().hex[:8]}"}),
        **{"enable.auto.commit": False, "auto.offset.reset": "earliest"},
    )
    try:
        consumer.subscribe([topic])
        for _ in range(40):
            for msg in consumer.consume(10, timeout=0.5):
                return msg.error()
        raise AssertionError(f"{principal} met neither a record nor an error on {topic}")
    finally:
        consumer.close()


def group_of(name: str, settings: Settings) -> str:
    return next(p for p in PROCESSES if p.name == name).group_for(settings.topic_prefix) or ""


def test_a_client_without_credentials_is_refused(secured: Settings) -> None:
    anonymous = AdminClient({"bootstrap.servers": secured.bootstrap_servers, "log_level": 0})
    with pytest.raises(KafkaException):
        anonymous.list_topics(timeout=3)


def test_a_wrong_password_is_refused_and_the_cli_says_so(secured: Settings) -> None:
    wrong = secured.model_copy(update={"kafka_password": SecretStr("not-the-password")})
    with pytest.raises(BrokerUnreachable, match="refused the login of 'operator'"):
        admin_client(wrong)
    assert produce_error(wrong, principal_of("flow", "users"), "anything") is not None


def test_a_flow_writes_only_what_it_produces_and_reads_only_what_it_consumes(env: Scope) -> None:
    settings, users = env.settings, principal_of("flow", "users")
    assert produce_error(settings, users, env.topic(USER_EVENTS.name)) is None
    assert produce_error(settings, users, env.topic(USER_COMMANDS.name + ".dlq")) is None, "the DLQ of its input"
    assert produce_error(settings, users, env.topic(USER_EVENTS.name + ".dlq")) is not None, "not its output's"
    refused = produce_error(settings, users, env.topic(ORDER_EVENTS.name))
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    group = group_of("users", settings)
    assert produce_error(settings, OPERATOR, env.topic(USER_COMMANDS.name)) is None
    assert read_error(settings, users, env.topic(USER_COMMANDS.name), group) is None
    denied = read_error(settings, users, env.topic(ORDER_COMMANDS.name), group)
    assert denied is not None and denied.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    other_group = read_error(settings, users, env.topic(USER_COMMANDS.name), f"{settings.topic_prefix}not-its-group")
    assert other_group is not None and other_group.code() == KafkaError.GROUP_AUTHORIZATION_FAILED


def test_the_ingress_writes_its_commands_and_reads_nothing(env: Scope) -> None:
    settings, ingress = env.settings, principal_of("http", "ingress")
    assert produce_error(settings, ingress, env.topic(ORDER_COMMANDS.name)) is None
    assert produce_error(settings, ingress, env.topic(ORDER_EVENTS.name)) is not None
    assert produce_error(settings, OPERATOR, env.topic(ORDER_COMMANDS.name)) is None
    denied = read_error(settings, ingress, env.topic(ORDER_COMMANDS.name), group_of("orders", settings))
    assert denied is not None
    assert denied.code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED)


def test_the_operator_can_do_everything(env: Scope) -> None:
    settings = env.settings
    topic = env.create_topic("operator-own", 1)
    assert produce_error(settings, OPERATOR, topic) is None
    assert read_error(settings, OPERATOR, topic) is None
    assert read_error(settings, OPERATOR, topic, f"{settings.topic_prefix}any-group") is None
    admin, _ = admin_client(settings)
    assert admin.describe_acls(acl_filter(), request_timeout=10).result(timeout=15)


def test_apply_grants_each_principal_its_acls_once_and_revokes_what_is_no_longer_declared(env: Scope) -> None:
    settings = env.settings
    admin, _ = admin_client(settings)
    steps = kafka_access.plan(settings, admin)
    assert {s.action for s in steps} == {"ok"}, "apply granted every declared ACL"
    assert {s.principal for s in steps} == {f"User:{p.name}" for p in PRINCIPALS if p.grants}

    users = next(p for p in PRINCIPALS if p.name == principal_of("flow", "users"))
    stale = kafka_access.binding(users.name, Grant("write", "topic", ORDER_EVENTS.name), settings.topic_prefix)
    admin.create_acls([stale])[stale].result(timeout=15)
    assert produce_error(settings, users.name, env.topic(ORDER_EVENTS.name)) is None
    again = apply(settings)
    revoked = [s for s in again if s.action == "revoke"]
    assert [(s.topic, s.done) for s in revoked] == [("User:flow-users", True)]
    assert {s.action for s in apply(settings) if s.topic.startswith("User:")} == {"ok"}, "idempotent"


def test_a_partner_writes_its_own_topic_only(env: Scope) -> None:
    settings = env.settings
    acme = env.create_topic(PARTNER_COMMANDS.for_partner("acme").name, 1)
    globex = env.create_topic(PARTNER_COMMANDS.for_partner("globex").name, 1)
    password = kafka_access.add_partner_principal(settings, "acme")
    partner = settings.model_copy(update={"kafka_password": SecretStr(password)})
    assert produce_error(partner, "partner-acme", acme) is None
    assert produce_error(partner, "partner-acme", globex) is not None
    assert produce_error(settings, OPERATOR, acme) is None
    assert read_error(partner, "partner-acme", acme) is not None
    orders = principal_of("flow", "orders")
    assert read_error(settings, orders, acme, group_of("orders", settings)) is None, "the orders flow reads them all"


def test_a_data_folder_formatted_without_scram_is_upgraded_by_stack_up(settings: Settings, tmp_path: Path) -> None:
    private = private_kafka(settings, tmp_path / "stack")
    kafka = Kafka(private)
    kafka.paths.ensure()
    kafka.install()
    kafka.write_config()
    kafka.data_dir.mkdir(parents=True)
    storage_tool = ["kafka.tools.StorageTool", "format", "-t", uuid.uuid4().hex[:22], "-c", str(kafka.config_file)]
    java = [java_binary(), "-cp", f"{kafka.libs}/*", f"-Dlog4j2.configurationFile={LOG_CONFIG}"]
    subprocess.run([*java, *storage_tool], check=True, capture_output=True, timeout=120)
    assert not (kafka.data_dir / SCRAM_MARKER).exists()
    stack = Stack(private, only=("kafka",))
    try:
        assert [row.state for row in stack.up()] == ["started"]
        admin, meta = admin_client(private)
        assert meta.brokers
        users = admin.describe_user_scram_credentials().result()
        assert {OPERATOR, *(p.name for p in PRINCIPALS)} <= set(users)
        assert (kafka.data_dir / SCRAM_MARKER).exists()
    finally:
        stack.down()
