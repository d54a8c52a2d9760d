"""Kafka principals and ACLs: the grants of ``topology/access.py`` bound on the broker under the topic prefix.

``apply`` (run by ``shopstream topology apply``) creates each process principal's missing
ACLs on the prefix's names and removes the ones no longer declared, leaving other prefixes'
alone; ``ensure_principals`` gives every principal its SCRAM credential (the local stack,
whose passwords are derived); ``add_partner_principal`` makes a partner's principal, writable
to its own topic only. A plaintext broker has no authorizer: nothing here applies to it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from ops.exceptions import OpsError
from ops.kafka_admin import acl_filter, acls_enforced, admin_client
from topology.access import OPERATOR, PRINCIPALS, Grant, Principal, partner_principal
from topology.kafka_client import password_for
from topology.settings import Settings

SCRAM_ITERATIONS = 8192
_OPERATIONS = {
    "read": AclOperation.READ,
    "write": AclOperation.WRITE,
    "describe-configs": AclOperation.DESCRIBE_CONFIGS,
}
_RESOURCES = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP}
_PATTERNS = {"literal": ResourcePatternType.LITERAL, "prefixed": ResourcePatternType.PREFIXED}


class AccessError(OpsError):
    pass


@dataclass(frozen=True)
class AclStep:
    action: Literal["grant", "revoke", "ok"]
    principal: str
    detail: str
    binding: AclBinding


def binding(principal: str, grant: Grant, prefix: str) -> AclBinding:
    return AclBinding(
        _RESOURCES[grant.resource],
        grant.name_for(prefix),
        _PATTERNS[grant.pattern],
        f"User:{principal}",
        "*",
        _OPERATIONS[grant.operation],
        AclPermissionType.ALLOW,
    )


def describe(b: AclBinding) -> str:
    pattern = " (prefix)" if b.resource_pattern_type == ResourcePatternType.PREFIXED else ""
    return f"{b.operation.name} {b.restype.name.lower()} {b.name}{pattern}"


def _key(b: AclBinding) -> tuple[object, ...]:
    return (b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type)


def _acls_of(admin: AdminClient, principal: str) -> list[AclBinding]:
    query = acl_filter(principal=f"User:{principal}")
    return list(admin.describe_acls(query, request_timeout=10).result(timeout=15))


def _in_scope(name: str, prefix: str) -> bool:
    """Names of this prefix's environment (its topics and its groups), not another prefix's."""
    return name.startswith((f"{prefix}shop.", f"{prefix}shopstream."))


def plan(settings: Settings, admin: AdminClient, principals: Iterable[Principal] = PRINCIPALS) -> list[AclStep]:
    """Each declared ACL (granted or missing) and each stale one under the prefix; nothing is changed."""
    prefix = settings.topic_prefix
    steps: list[AclStep] = []
    for principal in principals:
        wanted = {_key(b): b for b in (binding(principal.name, g, prefix) for g in principal.grants)}
        have = {_key(b): b for b in _acls_of(admin, principal.name)}
        for key, b in wanted.items():
            steps.append(AclStep("ok" if key in have else "grant", b.principal, describe(b), b))
        for key, b in have.items():
            if key not in wanted and _in_scope(b.name, prefix):
                steps.append(AclStep("revoke", b.principal, describe(b) + "; no longer declared", b))
    return steps


def apply(settings: Settings, admin: AdminClient, steps: list[AclStep]) -> set[AclStep]:
    """Create the missing ACLs and delete the stale ones of ``steps``; the steps done."""
    grants = [s for s in steps if s.action == "grant"]
    revokes = [s for s in steps if s.action == "revoke"]
    if grants:
        for future in admin.create_acls([s.binding for s in grants], request_timeout=15).values():
            _settle(future, "create an ACL")
    if revokes:
        filters = [acl_filter(s.binding) for s in revokes]
        for future in admin.delete_acls(filters, request_timeout=15).values():
            _settle(future, "delete an ACL")
    if grants or revokes:
        _wait_until_enforced(admin, grants, revokes)
    return {*grants, *revokes}


def _wait_until_enforced(
    admin: AdminClient, grants: list[AclStep], revokes: list[AclStep], timeout_s: float = 30.0
) -> None:
    """Return once the broker's authorizer holds the change (it follows the metadata log a moment later)."""
    principals = {s.principal for s in (*grants, *revokes)}
    deadline = time.monotonic() + timeout_s
    while True:
        have = {
            _key(b)
            for principal in principals
            for b in admin.describe_acls(acl_filter(principal=principal), request_timeout=10).result(timeout=15)
        }
        if all(_key(s.binding) in have for s in grants) and not any(_key(s.binding) in have for s in revokes):
            return
        if time.monotonic() > deadline:
            raise AccessError(f"the broker does not enforce the ACLs {timeout_s:.0f} s after they were changed")
        time.sleep(0.1)


def _settle(future: object, verb: str) -> None:
    try:
        future.result(timeout=30)  # type: ignore[attr-defined]
    except KafkaException as err:
        raise AccessError(f"could not {verb}: {err.args[0].str()}") from None


def upsert_credentials(admin: AdminClient, passwords: dict[str, str]) -> None:
    """Set each user's SCRAM-SHA-512 password (creating the user when new)."""
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    upserts = [UserScramCredentialUpsertion(user, info, password.encode()) for user, password in passwords.items()]
    for future in admin.alter_user_scram_credentials(upserts, request_timeout=15).values():
        _settle(future, "set a SCRAM credential")


def ensure_principals(settings: Settings, missing_only: bool = False) -> None:
    """Every principal of the topology (and the operator) with its derived password: the local stack's.

    ``missing_only``: only those the broker has no credential for (a principal declared since
    it started); one describe instead of a SCRAM hash per principal.
    """
    if not acls_enforced(settings):
        return
    admin, _ = admin_client(settings)
    names = [OPERATOR, *(p.name for p in PRINCIPALS)]
    if missing_only:
        try:
            known = set(admin.describe_user_scram_credentials(request_timeout=15).result(timeout=20))
        except KafkaException as err:
            raise AccessError(f"cannot list the broker's SCRAM users: {err}") from None
        names = [name for name in names if name not in known]
    if names:
        upsert_credentials(admin, {name: password_for(settings, name) for name in names})


def add_partner_principal(settings: Settings, partner_id: str) -> str:
    """Create (or give a new password to) the partner's principal, ``partner-ID``, and its one ACL.

    It may WRITE its own topic (``shop.partner.ID.commands`` under the prefix) and nothing else.
    Returns the new password, which is stored nowhere: show it once. A ValueError names an id
    no topic name can hold; an AccessError a broker that has no authorizer or refused.
    """
    principal = partner_principal(partner_id)
    if not acls_enforced(settings):
        raise AccessError(
            f"Kafka at {settings.bootstrap_servers} is plaintext: it has no principals\n"
            "  fix: restart the local broker with SASL (`shopstream stack down kafka && shopstream stack up`)"
        )
    admin, _ = admin_client(settings)
    password = secrets.token_urlsafe(24)
    upsert_credentials(admin, {principal.name: password})
    apply(settings, admin, plan(settings, admin, [principal]))
    return password
