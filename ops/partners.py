"""A partner's place on Kafka: its own command topic, and its principal allowed to write that topic only.

The orders flow reads every partner's topic (``shop.partner.{partner}.commands``) and takes
the partner's identity from the topic's name, so the topic must be writable by that partner
alone: the broker's ACLs say so (``ops.kafka_access.add_partner_principal``); a plaintext
broker (the local stack without SASL) has no principals, and then only the topic is made.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic

from ops.exceptions import OpsError
from ops.kafka_access import add_partner_principal
from ops.kafka_admin import acls_enforced, admin_client
from topology.access import partner_principal
from topology.settings import Settings
from topology.topics import PARTNER_COMMANDS, Topic


@dataclass(frozen=True)
class PartnerAccess:
    topic: str
    dead_letter_topic: str
    principal: str | None  # None on a broker without principals
    password: str | None  # shown once, stored nowhere


def add_partner(settings: Settings, partner_id: str) -> PartnerAccess:
    """The partner's topic (with the topology's partitions and config) and its principal; idempotent.

    A ValueError names an id no topic name can hold; an OpsError a broker that is down or refused.
    """
    topic = PARTNER_COMMANDS.for_partner(partner_id)
    dead_letter = topic.dead_letter
    assert dead_letter is not None  # noqa: S101 - the family declares its DLQ
    _create(settings, [topic, dead_letter])
    names = topic.name_for(settings.topic_prefix), dead_letter.name_for(settings.topic_prefix)
    if not acls_enforced(settings):
        return PartnerAccess(*names, principal=None, password=None)
    password = add_partner_principal(settings, partner_id)
    return PartnerAccess(*names, principal=partner_principal(partner_id).name, password=password)


def _create(settings: Settings, topics: list[Topic]) -> None:
    """Create the topics that are not on the broker yet."""
    admin, meta = admin_client(settings)
    missing = [t for t in topics if t.name_for(settings.topic_prefix) not in meta.topics]
    if not missing:
        return
    new = [NewTopic(t.name_for(settings.topic_prefix), t.partitions, t.replication, config=t.config) for t in missing]
    for name, future in admin.create_topics(new, operation_timeout=10).items():
        try:
            future.result(timeout=30)
        except KafkaException as err:
            if err.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise OpsError(f"could not create topic {name}: {err.args[0].str()}") from None
