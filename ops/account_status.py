"""Account status: an operator suspends, reinstates or closes an account (``shopstream user suspend|reinstate|close``).

As with a staff role (``ops.staff``), the status is written to the account's credentials (the
table login and refresh read) and, in the same PostgreSQL transaction, to the account's
``ACCOUNT_STATE`` key in Redis (which the ingress reads with every request) and, as a
``SuspendAccount``, ``ReinstateAccount`` or ``CloseAccount`` command, to the users' command
topic; the transaction commits only once Redis and Kafka have theirs, so no status changes
without its record (Redis is set back when Kafka does not take the command). The users flow
records the change (``AccountSuspended``, ``AccountReinstated``, ``AccountClosed``): the
MongoDB sink keeps it in the audit log with who (``by``, ``os_user``) and when, the PostgreSQL
sink in the read models (``user_status``).

Suspended or closed, an account cannot log in or refresh a session, and its access tokens
are refused from its next request on (403). Reinstated, it logs in again: no token or
session from before comes back. Closed is for good: a closed account is not reinstated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import psycopg
import redis
from psycopg import sql

from ops.staff import BadRequest, Operator, StaffError, postgres_failed, send_user_command
from topology.messages import CloseAccount, Message, ReinstateAccount, SuspendAccount
from topology.messages.users import AccountStatus
from topology.settings import Settings
from topology.stores import ACCOUNT_STATE, CREDENTIALS, account_state

Change = Literal["suspend", "reinstate", "close"]
STATUS_AFTER: dict[Change, AccountStatus] = {"suspend": "suspended", "reinstate": "active", "close": "closed"}
#: How long a reinstated account's key outlives the change: tokens issued before it are refused until they expire.
REINSTATED_KEY_MARGIN_S = 60
MAX_REASON = 500

SELECT_FOR_UPDATE = sql.SQL("SELECT {}, {} FROM {} WHERE lower({}) = lower(%s) FOR UPDATE").format(
    *map(sql.Identifier, CREDENTIALS.named("user_id", "status")),
    sql.Identifier(CREDENTIALS.name),
    sql.Identifier(*CREDENTIALS.named("email")),
)
SET_STATUS = sql.SQL("UPDATE {} SET {} = %s, {} = %s WHERE {} = %s").format(
    sql.Identifier(CREDENTIALS.name), *map(sql.Identifier, CREDENTIALS.named("status", "status_changed_at", "user_id"))
)


@dataclass(frozen=True)
class StatusChange:
    email: str
    user_id: str
    status: str
    previous: str
    #: False when the account already was as asked (nothing written, nothing sent)
    changed: bool
    reason: str
    by: str
    os_user: str
    at: datetime
    command_id: str | None


def change_status(
    settings: Settings, email: str, change: Change, reason: str, operator: Operator, now: datetime
) -> StatusChange:
    """Suspend, reinstate or close the account with ``email``; BadRequest or StaffError, nothing changed."""
    reason = reason.strip()
    if change != "reinstate" and not reason:
        raise BadRequest(f"--reason: why the account is {STATUS_AFTER[change]}, for the audit log")
    if len(reason) > MAX_REASON or not reason.isprintable():
        raise BadRequest(f"--reason: at most {MAX_REASON} printable characters")
    email = email.strip()
    if not 0 < len(email) <= 254 or "\x00" in email:
        raise BadRequest(f"{email!r} is not an email address")
    after = STATUS_AFTER[change]
    options = f"-c search_path={settings.pg_schema}"
    try:
        with psycopg.connect(settings.pg_url, options=options, connect_timeout=5) as db, db.transaction():
            row = db.execute(SELECT_FOR_UPDATE, (email,)).fetchone()
            if row is None:
                raise BadRequest(f"no account with the email {email!r}\n  fix: the user registers first")
            user_id, held = str(row[0]), str(row[1])
            unchanged = StatusChange(
                email, user_id, held, held, False, reason, operator.by, operator.os_user, now, None
            )
            if held == after:
                return unchanged
            if held == "closed":
                raise BadRequest(f"{email} is closed: a closed account stays closed")
            db.execute(SET_STATUS, (after, now, user_id))
            message = _command(change, user_id, reason, operator)
            command_id = _record(settings, user_id, after, now, message)
    except psycopg.errors.UndefinedColumn as err:
        raise StaffError(
            f"postgres: {CREDENTIALS.name} has no status in schema {settings.pg_schema}\n  fix: `shopstream db migrate`"
        ) from err
    except psycopg.Error as err:
        raise postgres_failed(err) from err
    return StatusChange(email, user_id, after, held, True, reason, operator.by, operator.os_user, now, command_id)


def _command(change: Change, user_id: str, reason: str, who: Operator) -> Message:
    if change == "suspend":
        return SuspendAccount(user_id=user_id, reason=reason, by=who.by, os_user=who.os_user)
    if change == "close":
        return CloseAccount(user_id=user_id, reason=reason, by=who.by, os_user=who.os_user)
    return ReinstateAccount(user_id=user_id, reason=reason, by=who.by, os_user=who.os_user)


def _record(settings: Settings, user_id: str, status: str, now: datetime, message: Message) -> str:
    """The account's state in Redis, then its command on Kafka (Redis set back if Kafka fails); the command's id."""
    key = ACCOUNT_STATE.format(settings.redis_prefix, user_id=user_id)
    lasting = None if status != "active" else settings.access_token_ttl_s + REINSTATED_KEY_MARGIN_S
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        before, before_ms = client.get(key), int(client.pttl(key))
        client.set(key, account_state(status, int(now.timestamp())), ex=lasting)
        try:
            return send_user_command(settings, user_id, message, now)
        except StaffError:
            if before is None:
                client.delete(key)
            else:
                client.set(key, before, px=before_ms if before_ms > 0 else None)
            raise
    except redis.RedisError as err:
        raise StaffError(f"redis: {err}; nothing changed\n  fix: `shopstream stack up`") from err
    finally:
        client.close()
