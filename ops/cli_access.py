"""``shopstream user`` (staff roles: ``ops.staff``; account status: ``ops.account_status``) and ``shopstream keys``.

``user grant|revoke`` give and take a staff role, ``user suspend|reinstate|close`` change an
account's status; ``keys init|rotate|list`` manage the JWT signing keys (``ops.keys``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TypeVar

import typer

from ops import account_status, keys, staff
from ops.output import EXIT_DOWN, EXIT_USAGE, emit, settings_or_exit

user_app = typer.Typer(
    no_args_is_help=True, help="Staff accounts (the support and admin roles), and suspending or closing an account."
)
keys_app = typer.Typer(no_args_is_help=True, help="The JWT signing keys every ingress instance shares.")

ROLE_HELP = f"the staff role: {' or '.join(staff.STAFF_ROLES)}"
T = TypeVar("T")
BY_HELP = "who you are, for the audit log (default: your OS user, which is recorded besides)"


def _or_exit(call: Callable[[], T]) -> T:
    """The call's answer; a request the staff code refuses exits 2, one it cannot carry out 1, each with its message."""
    try:
        return call()
    except staff.BadRequest as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(EXIT_USAGE) from err
    except staff.StaffError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(EXIT_DOWN) from err


def _change(email: str, role: str, by: str | None, as_json: bool, grant: bool) -> None:
    settings = settings_or_exit()
    change = _or_exit(lambda: staff.change_role(settings, email, role, grant, staff.Operator.of(by), datetime.now(UTC)))
    if as_json:
        typer.echo(json.dumps(asdict(change), default=str))
        return
    verb = "granted" if grant else "revoked"
    roles = ", ".join(change.roles)
    if not change.changed:
        held = "already has" if grant else "does not have"
        typer.echo(f"{change.email} ({change.user_id}) {held} the {role} role; nothing changed (roles: {roles})")
        return
    typer.echo(
        f"{verb} {role} {'to' if grant else 'from'} {change.email} ({change.user_id}) by {change.by}"
        f" (OS user {change.os_user}) at {change.at.isoformat(timespec='seconds')}; roles now: {roles}\n"
        f"its sessions take the change at their next refresh; access tokens issued before keep their roles"
        f" until they expire (at most {settings.access_token_ttl_s} s)"
    )


@user_app.command("grant")
def grant(
    email: str = typer.Argument(..., help="the account's email"),
    role: str = typer.Option(..., "--role", help=ROLE_HELP),
    by: str = typer.Option(None, "--by", help=BY_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Give an account a staff role (recorded in the audit log). Granting a role it holds changes nothing."""
    _change(email, role, by, as_json, grant=True)


@user_app.command("revoke")
def revoke(
    email: str = typer.Argument(..., help="the account's email"),
    role: str = typer.Option(..., "--role", help=ROLE_HELP),
    by: str = typer.Option(None, "--by", help=BY_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Take a staff role from an account (recorded in the audit log). Revoking a role it lacks changes nothing."""
    _change(email, role, by, as_json, grant=False)


REASON_HELP = "why, for the audit log"


def _status(email: str, change: account_status.Change, reason: str, by: str | None, as_json: bool) -> None:
    settings = settings_or_exit()
    operator, now = staff.Operator.of(by), datetime.now(UTC)
    done = _or_exit(lambda: account_status.change_status(settings, email, change, reason, operator, now))
    if as_json:
        typer.echo(json.dumps(asdict(done), default=str))
        return
    if not done.changed:
        typer.echo(f"{done.email} ({done.user_id}) is {done.status} already; nothing changed")
        return
    effect = {
        "suspended": "it cannot log in, and its tokens are refused from its next request on",
        "active": "it may log in again; no token or session from before its suspension holds",
        "closed": "for good: it cannot log in, and its tokens are refused from its next request on",
    }[done.status]
    typer.echo(
        f"{done.email} ({done.user_id}) is {done.status} (was {done.previous}) by {done.by}"
        f" (OS user {done.os_user}) at {done.at.isoformat(timespec='seconds')}: {effect}"
    )


@user_app.command("suspend")
def suspend(
    email: str = typer.Argument(..., help="the account's email"),
    reason: str = typer.Option(..., "--reason", help=REASON_HELP),
    by: str = typer.Option(None, "--by", help=BY_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Suspend an account (recorded in the audit log): no login, its tokens refused at once, until reinstated."""
    _status(email, "suspend", reason, by, as_json)


@user_app.command("reinstate")
def reinstate(
    email: str = typer.Argument(..., help="the account's email"),
    reason: str = typer.Option("", "--reason", help=REASON_HELP),
    by: str = typer.Option(None, "--by", help=BY_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Reinstate a suspended account (recorded in the audit log); the user logs in again. A closed one stays closed."""
    _status(email, "reinstate", reason, by, as_json)


@user_app.command("close")
def close(
    email: str = typer.Argument(..., help="the account's email"),
    reason: str = typer.Option(..., "--reason", help=REASON_HELP),
    by: str = typer.Option(None, "--by", help=BY_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Close an account for good (recorded in the audit log): no login, its tokens refused at once."""
    _status(email, "close", reason, by, as_json)


def _keys_failed(err: keys.KeysError) -> typer.Exit:
    typer.echo(f"error: {err}", err=True)
    return typer.Exit(EXIT_USAGE if isinstance(err, keys.NoKeysYet) else EXIT_DOWN)


@keys_app.command("init")
def keys_init() -> None:
    """Create the first signing key in SHOP_KEYS_DIR unless it has one (idempotent)."""
    settings = settings_or_exit()
    try:
        created, manifest = keys.init(settings, datetime.now(UTC))
    except keys.KeysError as err:
        raise _keys_failed(err) from err
    signing = manifest.signing
    assert signing is not None  # noqa: S101 - init always leaves a signing key
    state = "created" if created else "already there"
    typer.echo(f"{settings.signing_keys_dir}: signing key {signing.kid} ({state})")


@keys_app.command("rotate")
def keys_rotate(as_json: bool = typer.Option(False, "--json")) -> None:
    """A new key signs from now; the previous one verifies until its tokens have expired; retired keys' files go."""
    settings = settings_or_exit()
    try:
        rotation = keys.rotate(settings, datetime.now(UTC))
    except keys.KeysError as err:
        raise _keys_failed(err) from err
    if as_json:
        summary = {
            "signing": rotation.signing.kid,
            "previous": rotation.previous.kid,
            "previous_retires": rotation.previous_retires.isoformat(),
            "deleted": list(rotation.deleted),
        }
        typer.echo(json.dumps(summary))
        return
    typer.echo(
        f"{rotation.signing.kid} signs from now (running instances take it within a second);"
        f" {rotation.previous.kid} verifies until {rotation.previous_retires.isoformat(timespec='seconds')}"
    )
    if rotation.deleted:
        typer.echo(f"deleted the files of retired keys: {', '.join(rotation.deleted)}")


@keys_app.command("list")
def keys_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every key, newest first: its kid, when it was made, its state (signing, verifying, retired), when it retires."""
    settings = settings_or_exit()
    try:
        rows = keys.listing(settings, datetime.now(UTC))
    except keys.KeysError as err:
        raise _keys_failed(err) from err
    table = [
        {
            "kid": row.kid,
            "created": row.created.isoformat(timespec="seconds"),
            "state": row.state,
            "retires": row.retires.isoformat(timespec="seconds") if row.retires else None,
        }
        for row in rows
    ]
    emit(table, ("kid", "created", "state", "retires"), as_json)
