"""Kafka clients for operator commands: fail fast and clearly when the broker is away."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ClusterMetadata,
    OffsetSpec,
    ResourcePatternType,
    ResourceType,
)

from ops.exceptions import OpsError
from topology.access import OPERATOR
from topology.kafka_client import client_config, security_protocol, username_for
from topology.settings import Settings

CONNECT_TIMEOUT_S = 5.0
T = TypeVar("T")
#: Errors a just-created topic or a moving leader gives for a moment (not always flagged retriable).
TRANSIENT = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._TRANSPORT,
}


class BrokerUnreachable(OpsError):
    pass


def _base(settings: Settings) -> dict[str, object]:
    """An operator command's client: the operator principal, failing fast."""
    return {
        **client_config(settings, OPERATOR),
        "socket.connection.setup.timeout.ms": int(CONNECT_TIMEOUT_S * 1000),
        "log_level": 0,
    }


def admin_client(settings: Settings) -> tuple[AdminClient, ClusterMetadata]:
    """An AdminClient and the cluster metadata, or BrokerUnreachable within a few seconds."""
    failures: list[KafkaError] = []  # a refused login is only told to the error callback
    admin = AdminClient({**_base(settings), "error_cb": failures.append})
    try:
        meta = admin.list_topics(timeout=CONNECT_TIMEOUT_S)
    except KafkaException as err:
        admin.poll(0)
        refused = [f for f in failures if f.code() == KafkaError._AUTHENTICATION]
        if refused:
            user = username_for(settings, OPERATOR)
            raise BrokerUnreachable(
                f"Kafka at {settings.bootstrap_servers} refused the login of {user!r}: {refused[0].str()}\n"
                "  fix: set SHOP_KAFKA_PASSWORD (and SHOP_KAFKA_USERNAME) to the operator's credentials, or for "
                "the local stack keep SHOP_KAFKA_SECRET as the stack was started with"
            ) from None
        raise BrokerUnreachable(
            f"Kafka at {settings.bootstrap_servers} did not answer within {CONNECT_TIMEOUT_S:.0f} s ({err.args[0]})\n"
            "  fix: start it with `shopstream stack up`, or point SHOP_KAFKA_BOOTSTRAP at a running cluster"
        ) from None
    return admin, meta


def retrying(call: Callable[[], T], attempts: int = 20) -> T:
    """Run an admin call, retrying retriable errors (a leader moving, a topic just created)."""
    for _ in range(attempts - 1):
        try:
            return call()
        except KafkaException as err:
            if not (err.args[0].retriable() or err.args[0].code() in TRANSIENT):
                raise
            time.sleep(0.25)
    return call()


def list_offsets(
    admin: AdminClient, partitions: list[TopicPartition], spec: Callable[[], OffsetSpec]
) -> dict[tuple[str, int], int]:
    """Offsets of many partitions in one request.

    ``spec`` makes one OffsetSpec per partition: confluent-kafka crashes the interpreter
    when one OffsetSpec object is shared by several partitions of a request.
    """
    if not partitions:
        return {}

    def call() -> dict[tuple[str, int], int]:
        futures = admin.list_offsets({tp: spec() for tp in partitions}, request_timeout=10)
        return {(tp.topic, tp.partition): future.result(timeout=15).offset for tp, future in futures.items()}

    return retrying(call)


def end_offsets(admin: AdminClient, partitions: list[TopicPartition]) -> dict[tuple[str, int], int]:
    """High watermarks of many partitions."""
    return list_offsets(admin, partitions, OffsetSpec.latest)


def reader(settings: Settings, **extra: object) -> Consumer:
    """A consumer that joins no group and commits nothing (for inspection)."""
    return Consumer(
        {
            **_base(settings),
            "group.id": f"shopstream-ops-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            **extra,
        }
    )


def read_to_end(settings: Settings, topics: list[str]) -> Iterator[Message]:
    """Every committed record of the topics, from the start to the end offsets read at the start, then stop.

    Topics the broker does not have are skipped; a partition whose end is never delivered
    (a gap) ends the read after ten seconds without a record.
    """
    admin, meta = admin_client(settings)
    partitions = [TopicPartition(t, p) for t in topics if t in meta.topics for p in meta.topics[t].partitions]
    ends = end_offsets(admin, partitions)
    todo = {
        (tp.topic, tp.partition): ends[tp.topic, tp.partition] for tp in partitions if ends[tp.topic, tp.partition] > 0
    }
    if not todo:
        return
    consumer = reader(settings, **{"isolation.level": "read_committed"})
    consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for (t, p) in todo])
    try:
        idle = 0
        while todo and idle < 20:
            batch = consumer.consume(500, timeout=0.5)
            idle = 0 if batch else idle + 1
            for msg in batch:
                if msg.error() is not None:
                    continue
                key = (msg.topic(), msg.partition())
                if key not in todo or msg.offset() >= todo[key]:
                    continue
                yield msg
                if msg.offset() + 1 >= todo[key]:
                    del todo[key]
    finally:
        consumer.close()


def acls_enforced(settings: Settings) -> bool:
    """Whether the broker authenticates and authorizes (a plaintext one has no authorizer)."""
    return security_protocol(settings) != "PLAINTEXT"


def acl_filter(exact: AclBinding | None = None, principal: str | None = None) -> AclBindingFilter:
    """A filter matching exactly one ACL, or every ACL (of ``principal`` when given)."""
    if exact is not None:
        b = exact
        return AclBindingFilter(
            b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type
        )
    return AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, principal, None, AclOperation.ANY, AclPermissionType.ANY
    )


def delete_topics_with_prefix(settings: Settings, prefix: str) -> list[str]:
    """Delete every topic whose name starts with ``prefix`` (a test's or a benchmark's namespace).

    The ACLs on names under the prefix, of any principal, go with them.
    """
    if not prefix:
        raise OpsError("refusing to delete topics without a prefix")
    admin, meta = admin_client(settings)
    mine = [name for name in meta.topics if name.startswith(prefix)]
    if mine:
        for future in admin.delete_topics(mine, operation_timeout=30).values():
            future.result(timeout=60)
    if acls_enforced(settings):
        acls = admin.describe_acls(acl_filter(), request_timeout=10).result(timeout=15)
        doomed = [acl_filter(b) for b in acls if b.name.startswith(prefix)]
        if doomed:
            for future in admin.delete_acls(doomed, request_timeout=15).values():
                future.result(timeout=30)
    return mine
