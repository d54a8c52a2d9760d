"""Staff roles: an operator grants or revokes ``support`` or ``admin`` (``shopstream user grant|revoke``).

This is the only way an account gets a staff role: no HTTP route takes roles. The change is
written to the account's credentials (the table login and refresh read) and, in the same
PostgreSQL transaction, sent as a ``GrantRole`` or ``RevokeRole`` command on the users'
command topic; the transaction commits only once Kafka has the command, so no role changes
without its record. The users flow turns the command into ``RoleGranted`` or ``RoleRevoked``,
which the MongoDB sink keeps in the audit log like every event, with the operator (``by``:
``--by``, else the OS user; ``os_user``: always the OS account that ran the command) and the
time of the change.

The account's sessions take the new roles at their next refresh; an access token issued
before keeps the roles it carries until it expires (``SHOP_ACCESS_TOKEN_TTL_S`` at most).
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from typing import get_args

import psycopg
from confluent_kafka import KafkaError, Producer
from psycopg import sql

from ops.exceptions import OpsError
from topology.access import OPERATOR
from topology.envelope import Producer as Sender
from topology.envelope import encode, envelop
from topology.kafka_client import client_config
from topology.messages import Message
from topology.messages.users import AccountRole, GrantRole, RevokeRole, StaffRole
from topology.settings import Settings
from topology.stores import CREDENTIALS
from topology.topics import USER_COMMANDS

STAFF_ROLES: tuple[str, ...] = get_args(StaffRole)
ACCOUNT_ROLES: tuple[str, ...] = get_args(AccountRole)
#: How long the command may take to reach Kafka before the change is rolled back.
DELIVERY_TIMEOUT_S = 10
SENDER = Sender("service", "shopstream-cli")

SELECT_FOR_UPDATE = sql.SQL("SELECT {}, {} FROM {} WHERE lower({}) = lower(%s) FOR UPDATE").format(
    *map(sql.Identifier, CREDENTIALS.named("user_id", "roles")),
    sql.Identifier(CREDENTIALS.name),
    sql.Identifier(*CREDENTIALS.named("email")),
)
SET_ROLES = sql.SQL("UPDATE {} SET {} = %s WHERE {} = %s").format(
    sql.Identifier(CREDENTIALS.name), *map(sql.Identifier, CREDENTIALS.named("roles", "user_id"))
)


class StaffError(OpsError):
    """A role could not be changed because something is down; nothing was changed."""


class BadRequest(StaffError):
    """An unknown role or account, or an operator name that cannot be recorded (exit code 2)."""


@dataclass(frozen=True)
class Operator:
    """Who changes a role: as they name themselves (``--by``, else the OS user), and the OS account."""

    by: str
    os_user: str

    @classmethod
    def of(cls, by: str | None) -> Operator:
        try:
            os_user = getpass.getuser()
        except (KeyError, OSError):
            os_user = "unknown"
        by = os_user if by is None else by.strip()
        if not 0 < len(by) <= 128 or not by.isprintable():
            raise BadRequest("--by: 1 to 128 printable characters (who you are, for the audit log)")
        return cls(by, os_user[:128])


@dataclass(frozen=True)
class RoleChange:
    email: str
    user_id: str
    role: str
    granted: bool
    #: False when the account already was as asked (nothing written, nothing sent)
    changed: bool
    roles: tuple[str, ...]
    by: str
    os_user: str
    at: datetime
    command_id: str | None


def change_role(
    settings: Settings, email: str, role: str, grant: bool, operator: Operator, now: datetime
) -> RoleChange:
    """Grant (or revoke) ``role`` of the account with ``email``; BadRequest or StaffError, nothing changed."""
    if role not in STAFF_ROLES:
        raise BadRequest(f"no staff role {role!r}; pick {' or '.join(STAFF_ROLES)}")
    email = email.strip()
    if not 0 < len(email) <= 254 or "\x00" in email:
        raise BadRequest(f"{email!r} is not an email address")
    options = f"-c search_path={settings.pg_schema}"
    try:
        with psycopg.connect(settings.pg_url, options=options, connect_timeout=5) as db, db.transaction():
            row = db.execute(SELECT_FOR_UPDATE, (email,)).fetchone()
            if row is None:
                raise BadRequest(f"no account with the email {email!r}\n  fix: the user registers first")
            user_id, held = str(row[0]), tuple(str(r) for r in row[1])
            roles = _roles_after(held, role, grant)
            if roles == held:
                return RoleChange(email, user_id, role, grant, False, held, operator.by, operator.os_user, now, None)
            db.execute(SET_ROLES, (list(roles), user_id))
            kind = GrantRole if grant else RevokeRole
            change = kind(user_id=user_id, role=role, roles=roles, by=operator.by, os_user=operator.os_user)  # type: ignore[arg-type]
            command_id = send_user_command(settings, user_id, change, now)
    except psycopg.errors.UndefinedTable as err:
        raise StaffError(
            f"postgres: no {CREDENTIALS.name} table in schema {settings.pg_schema}\n  fix: `shopstream db migrate`"
        ) from err
    except psycopg.Error as err:
        raise postgres_failed(err) from err
    return RoleChange(email, user_id, role, grant, True, roles, operator.by, operator.os_user, now, command_id)


def postgres_failed(err: psycopg.Error) -> StaffError:
    """What an operator is told when PostgreSQL failed a staff change (the transaction changed nothing)."""
    what = str(err).strip() or type(err).__name__
    return StaffError(f"postgres: {what}; nothing changed\n  fix: `shopstream stack up`")


def _roles_after(held: tuple[str, ...], role: str, grant: bool) -> tuple[str, ...]:
    """The roles the account holds after the change, in ``ACCOUNT_ROLES`` order (the same tuple when unchanged)."""
    after = (set(held) | {role}) if grant else (set(held) - {role})
    if after == set(held):
        return held
    return tuple(r for r in ACCOUNT_ROLES if r in after) + tuple(sorted(after - set(ACCOUNT_ROLES)))


def send_user_command(settings: Settings, user_id: str, command: Message, now: datetime) -> str:
    """``command`` on the users' command topic, once Kafka has it; its id. StaffError otherwise."""
    envelope = envelop(command, producer=SENDER, occurred_at=now)
    topic = USER_COMMANDS.name_for(settings.topic_prefix)
    producer = Producer(
        {
            **client_config(settings, OPERATOR),
            "enable.idempotence": True,
            "acks": "all",
            "message.timeout.ms": DELIVERY_TIMEOUT_S * 1000,
            "log_level": 0,
        }
    )
    failures: list[KafkaError] = []
    delivered: list[bool] = []

    def on_delivery(err: KafkaError | None, _msg: object) -> None:
        if err is None:
            delivered.append(True)
        else:
            failures.append(err)

    producer.produce(topic, encode(envelope), key=user_id.encode(), on_delivery=on_delivery)
    producer.flush(DELIVERY_TIMEOUT_S + 5)
    if not delivered:
        reason = failures[0].str() if failures else "no answer"
        raise StaffError(
            f"kafka: {topic} did not take the command ({reason}); nothing changed\n"
            "  fix: `shopstream stack up`, or point SHOP_KAFKA_BOOTSTRAP at a running cluster"
        )
    return envelope.id
