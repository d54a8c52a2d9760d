"""Accounts: registration, login, rotating refresh tokens, logout, and OAuth2 client credentials.

Passwords and partner secrets are hashed with argon2 (argon2-cffi) in tables the ingress
owns (``credentials``, ``partner_clients``, migration 0002), written on the primary.

Refresh tokens are opaque and single-use. Each login starts a *family* (a session); a
refresh answers a new pair in the same family and marks the old token used. Presenting a
used token again means it was stolen or replayed: the whole family is revoked, so both
the thief and the owner must log in again. Logout revokes the family and puts the access
token's id on a deny list until it expires. All of it lives in Redis under TTLs. A refresh
reads the account's roles again, so a role granted or revoked (``shopstream user``) holds
from the session's next refresh.

An account suspended or closed (``shopstream user suspend|close``, its ``credentials.status``)
cannot log in or refresh (403), and its access tokens stop at once: the operator's command
also writes the account's ``ACCOUNT_STATE`` key, which ``middleware.Admit`` reads with every
request. A session begun before the account's status last changed is over: reinstated, the
user logs in again.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import redis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from psycopg import sql

from ingress import statements
from ingress.auth.tokens import KeyRing, Principal, Role
from ingress.problems import Problem
from topology.settings import Settings
from topology.stores import (
    ACCOUNT_STATE,
    CREDENTIALS,
    PARTNER_CLIENTS,
    REFRESH_TOKEN,
    REFRESH_TOKEN_USED,
    REVOKED_TOKEN,
    SESSION_FAMILY,
)

HASHER = PasswordHasher()
#: Verified when the email is unknown, so a miss costs as long as a wrong password.
DUMMY_HASH = HASHER.hash("not a password of anyone")
REFRESH_TTL = timedelta(days=30)
#: The scopes a partner's client may be granted, and what each is for.
SCOPES = {
    "catalog:write": "add products and change them",
    "stock:write": "adjust stock",
    "orders:write": "place orders",
    "fulfilment:write": "ship and deliver the orders whose every SKU the partner owns",
}

CREATE_USER = statements.insert(CREDENTIALS, ("user_id", "email", "password_hash"))
FORGET_USER = statements.delete(CREDENTIALS, statements.equals(CREDENTIALS, "user_id"))
USER_BY_EMAIL = statements.select(
    CREDENTIALS, ("user_id", "password_hash", "roles", "status"), statements.equals_ignoring_case(CREDENTIALS, "email")
)
ROLES_BY_ID = statements.select(
    CREDENTIALS, ("roles", "status", "status_changed_at"), statements.equals(CREDENTIALS, "user_id")
)
CLIENT_BY_ID = statements.select(
    PARTNER_CLIENTS, ("partner_id", "secret_hash", "scopes"), statements.equals(PARTNER_CLIENTS, "client_id")
)
CREATE_CLIENT = statements.insert(PARTNER_CLIENTS, ("client_id", "partner_id", "secret_hash", "scopes"))


class AuthFailed(Exception):
    """Credentials or a refresh token that do not hold; the message is safe to show."""


class EmailTaken(Exception):
    """Another account has this email."""


class AccountNotActive(Exception):
    """The account is suspended or closed: it may not log in, nor go on with a session."""

    def __init__(self, status: str) -> None:
        super().__init__(f"the account is {status}")
        self.status = status


def account_not_active(status: str) -> Problem:
    """The answer to a request of an account that is suspended or closed."""
    return Problem(
        403, f"account-{status}", f"the account is {status}", "it cannot log in or place orders; contact support"
    )


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    def __init__(self, settings: Settings, keys: KeyRing, store: redis.Redis) -> None:
        self.settings = settings
        self.keys = keys
        self.store = store
        self.prefix = settings.redis_prefix
        self.access_ttl = timedelta(seconds=settings.access_token_ttl_s)

    def _db(self) -> psycopg.Connection[tuple[object, ...]]:
        options = f"-c search_path={self.settings.pg_schema}"
        return psycopg.connect(self.settings.pg_url, autocommit=True, options=options, connect_timeout=3)

    # Registration -------------------------------------------------------------------------
    def create(self, email: str, password: str) -> str:
        """A new customer's id; EmailTaken when the email is registered already."""
        user_id = "u_" + uuid.uuid4().hex[:20]
        try:
            with self._db() as db:
                db.execute(CREATE_USER, (user_id, email, HASHER.hash(password)))
        except psycopg.errors.UniqueViolation:
            raise EmailTaken(email) from None
        return user_id

    def forget(self, user_id: str) -> None:
        """Undo ``create`` (the registration command could not be sent)."""
        with self._db() as db:
            db.execute(FORGET_USER, (user_id,))

    def _verified(self, query: sql.Composed, key: str, secret: str, failure: str) -> tuple[object, ...]:
        """The row ``(id, hash, list)`` whose hash matches ``secret``; AuthFailed otherwise, in the same time."""
        row = None
        if "\x00" not in key:  # no stored id or email holds NUL (PostgreSQL text cannot)
            with self._db() as db:
                row = db.execute(query, (key,)).fetchone()
        try:
            HASHER.verify(str(row[1]) if row else DUMMY_HASH, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            raise AuthFailed(failure) from None
        if row is None:
            raise AuthFailed(failure)
        return row

    # Login and refresh --------------------------------------------------------------------
    def login(self, email: str, password: str) -> TokenPair:
        """A new session; AuthFailed for wrong credentials, AccountNotActive (after the password held)."""
        row = self._verified(USER_BY_EMAIL, email, password, "wrong email or password")
        if row[3] != "active":
            raise AccountNotActive(str(row[3]))
        return self._pair(str(row[0]), _user_roles(row[2]), uuid.uuid4().hex, datetime.now(UTC).timestamp())

    def _pair(self, user_id: str, roles: frozenset[Role], family: str, started: float) -> TokenPair:
        """A token pair of the session ``family``, begun at ``started`` (epoch seconds)."""
        access = self.keys.issue(Principal(user_id, "user", roles), self.access_ttl)
        refresh = "rt_" + secrets.token_urlsafe(32)
        record = {"user_id": user_id, "roles": sorted(roles), "family": family, "started": started}
        ttl = int(REFRESH_TTL.total_seconds())
        pipe = self.store.pipeline()
        pipe.set(REFRESH_TOKEN.format(self.prefix, digest=_digest(refresh)), json.dumps(record), ex=ttl)
        pipe.set(SESSION_FAMILY.format(self.prefix, family=family), user_id, ex=ttl)
        pipe.execute()
        return TokenPair(access, refresh, int(self.access_ttl.total_seconds()))

    def refresh_account(self, token: str) -> str | None:
        """The user a refresh token was issued to (its limits are counted there); None when unknown."""
        raw = self.store.get(REFRESH_TOKEN.format(self.prefix, digest=_digest(token)))
        return str(json.loads(raw)["user_id"]) if raw is not None else None

    def refresh(self, token: str) -> TokenPair:
        digest = _digest(token)
        raw = self.store.get(REFRESH_TOKEN.format(self.prefix, digest=digest))
        if raw is None:
            raise AuthFailed("unknown or expired refresh token")
        record = json.loads(raw)
        session = SESSION_FAMILY.format(self.prefix, family=record["family"])
        # Mark the token used, atomically: a second presentation (or a concurrent one) is a reuse.
        used = REFRESH_TOKEN_USED.format(self.prefix, digest=digest)
        if not self.store.set(used, "1", nx=True, ex=int(REFRESH_TTL.total_seconds())):
            self.store.delete(session)  # the whole session is revoked
            raise AuthFailed("refresh token reused; the session is revoked, log in again")
        if not self.store.exists(session):
            raise AuthFailed("the session was revoked; log in again")
        with self._db() as db:
            row = db.execute(ROLES_BY_ID, (record["user_id"],)).fetchone()
        if row is None:
            self.store.delete(session)
            raise AuthFailed("the account no longer exists")
        roles, status, changed_at = row
        if status != "active":
            self.store.delete(session)
            raise AccountNotActive(str(status))
        started = float(record.get("started", 0))  # a session recorded before it had a start began long ago
        if isinstance(changed_at, datetime) and started < changed_at.timestamp():
            self.store.delete(session)
            raise AuthFailed("the session ended when the account was suspended; log in again")
        return self._pair(record["user_id"], _user_roles(roles), record["family"], started)

    # Logout and revocation ----------------------------------------------------------------
    def logout(self, principal: Principal, refresh_token: str | None) -> None:
        if refresh_token:
            raw = self.store.get(REFRESH_TOKEN.format(self.prefix, digest=_digest(refresh_token)))
            if raw is not None and json.loads(raw)["user_id"] == principal.subject:
                self.store.delete(SESSION_FAMILY.format(self.prefix, family=json.loads(raw)["family"]))
        expires_at = principal.expires_at or datetime.now(UTC) + self.access_ttl
        left = max(1, int((expires_at - datetime.now(UTC)).total_seconds()) + 5)
        self.store.set(self.revocation_key(principal), "1", ex=left)

    def revocation_key(self, principal: Principal) -> str:
        """The Redis key that exists while the principal's access token is revoked."""
        return REVOKED_TOKEN.format(self.prefix, token_id=principal.token_id)

    def state_key(self, principal: Principal) -> str:
        """The Redis key that holds the user's account state while their tokens do not all hold."""
        return ACCOUNT_STATE.format(self.prefix, user_id=principal.subject)

    # Partners: OAuth2 client credentials ----------------------------------------------------
    def client_token(self, client_id: str, secret: str, scope: str | None) -> tuple[str, str, int]:
        """(access token, granted scope, seconds) for a partner's client; AuthFailed or ValueError (scope)."""
        row = self._verified(CLIENT_BY_ID, client_id, secret, "invalid client")
        allowed: frozenset[str] = frozenset(row[2])  # type: ignore[call-overload]
        wanted = frozenset(scope.split()) if scope else allowed
        if not wanted <= allowed:
            raise ValueError(f"scope not granted to this client: {' '.join(sorted(wanted - allowed))}")
        principal = Principal(str(row[0]), "partner", frozenset({"partner"}), wanted)
        return (
            self.keys.issue(principal, self.access_ttl),
            " ".join(sorted(wanted)),
            int(self.access_ttl.total_seconds()),
        )


def _user_roles(stored: object) -> frozenset[Role]:
    """The roles of a credentials row a user's token may carry."""
    return frozenset(r for r in stored if r in ("customer", "support", "admin"))  # type: ignore[attr-defined]


def add_partner_client(settings: Settings, partner_id: str, scopes: list[str]) -> tuple[str, str]:
    """Register a client for a partner; (client id, secret), the secret shown once."""
    client_id, secret = "pc_" + uuid.uuid4().hex[:16], secrets.token_urlsafe(32)
    options = f"-c search_path={settings.pg_schema}"
    with psycopg.connect(settings.pg_url, autocommit=True, options=options) as db:
        db.execute(CREATE_CLIENT, (client_id, partner_id, HASHER.hash(secret), scopes))
    return client_id, secret
