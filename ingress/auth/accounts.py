"""Accounts: registration, login, rotating refresh tokens, logout, and OAuth2 client credentials.

Passwords and partner secrets are hashed with argon2 (argon2-cffi) in tables the ingress
owns (``credentials``, ``partner_clients``, migration 0002), written on the primary.

Refresh tokens are opaque and single-use. Each login starts a *family* (a session); a
refresh answers a new pair in the same family and marks the old token used. Presenting a
used token again means it was stolen or replayed: the whole family is revoked, so both
the thief and the owner must log in again. Logout revokes the family and puts the access
token's id on a deny list until it expires. All of it lives in Redis under TTLs.
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

from ingress.auth.tokens import KeyRing, Principal, Role
from topology.settings import Settings

HASHER = PasswordHasher()
#: Verified when the email is unknown, so a miss costs as long as a wrong password.
DUMMY_HASH = HASHER.hash("not a password of anyone")
REFRESH_TTL = timedelta(days=30)


class AuthFailed(Exception):
    """Credentials or a refresh token that do not hold; the message is safe to show."""


class EmailTaken(Exception):
    """Another account has this email."""


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
                db.execute(
                    "INSERT INTO credentials (user_id, email, password_hash) VALUES (%s, %s, %s)",
                    (user_id, email, HASHER.hash(password)),
                )
        except psycopg.errors.UniqueViolation:
            raise EmailTaken(email) from None
        return user_id

    def forget(self, user_id: str) -> None:
        """Undo ``create`` (the registration command could not be sent)."""
        with self._db() as db:
            db.execute("DELETE FROM credentials WHERE user_id = %s", (user_id,))

    def _verified(self, query: str, key: str, secret: str, failure: str) -> tuple[object, ...]:
        """The row ``(id, hash, list)`` whose hash matches ``secret``; AuthFailed otherwise, in the same time."""
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
        query = "SELECT user_id, password_hash, roles FROM credentials WHERE lower(email) = lower(%s)"
        row = self._verified(query, email, password, "wrong email or password")
        stored: list[str] = list(row[2])  # type: ignore[call-overload]
        roles: frozenset[Role] = frozenset(r for r in stored if r in ("customer", "support", "admin"))  # type: ignore[misc]
        return self._pair(str(row[0]), roles, uuid.uuid4().hex)

    def _pair(self, user_id: str, roles: frozenset[Role], family: str) -> TokenPair:
        access = self.keys.issue(Principal(user_id, "user", roles), self.access_ttl)
        refresh = "rt_" + secrets.token_urlsafe(32)
        record = {"user_id": user_id, "roles": sorted(roles), "family": family}
        ttl = int(REFRESH_TTL.total_seconds())
        pipe = self.store.pipeline()
        pipe.set(f"{self.prefix}rt:{_digest(refresh)}", json.dumps(record), ex=ttl)
        pipe.set(f"{self.prefix}rtf:{family}", user_id, ex=ttl)
        pipe.execute()
        return TokenPair(access, refresh, int(self.access_ttl.total_seconds()))

    def refresh(self, token: str) -> TokenPair:
        key = f"{self.prefix}rt:{_digest(token)}"
        raw = self.store.get(key)
        if raw is None:
            raise AuthFailed("unknown or expired refresh token")
        record = json.loads(raw)
        family = record["family"]
        # Mark the token used, atomically: a second presentation (or a concurrent one) is a reuse.
        if not self.store.set(f"{key}:used", "1", nx=True, ex=int(REFRESH_TTL.total_seconds())):
            self.store.delete(f"{self.prefix}rtf:{family}")  # the whole session is revoked
            raise AuthFailed("refresh token reused; the session is revoked, log in again")
        if not self.store.exists(f"{self.prefix}rtf:{family}"):
            raise AuthFailed("the session was revoked; log in again")
        return self._pair(record["user_id"], frozenset(record["roles"]), family)

    # Logout and revocation ----------------------------------------------------------------
    def logout(self, principal: Principal, refresh_token: str | None) -> None:
        if refresh_token:
            raw = self.store.get(f"{self.prefix}rt:{_digest(refresh_token)}")
            if raw is not None and json.loads(raw)["user_id"] == principal.subject:
                self.store.delete(f"{self.prefix}rtf:{json.loads(raw)['family']}")
        expires_at = principal.expires_at or datetime.now(UTC) + self.access_ttl
        left = max(1, int((expires_at - datetime.now(UTC)).total_seconds()) + 5)
        self.store.set(self.revocation_key(principal), "1", ex=left)

    def revocation_key(self, principal: Principal) -> str:
        """The Redis key that exists while the principal's access token is revoked."""
        return f"{self.prefix}revoked:{principal.token_id}"

    # Partners: OAuth2 client credentials ----------------------------------------------------
    def client_token(self, client_id: str, secret: str, scope: str | None) -> tuple[str, str, int]:
        """(access token, granted scope, seconds) for a partner's client; AuthFailed or ValueError (scope)."""
        query = "SELECT partner_id, secret_hash, scopes FROM partner_clients WHERE client_id = %s"
        row = self._verified(query, client_id, secret, "invalid client")
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


def add_partner_client(settings: Settings, partner_id: str, scopes: list[str]) -> tuple[str, str]:
    """Register a client for a partner; (client id, secret), the secret shown once."""
    client_id, secret = "pc_" + uuid.uuid4().hex[:16], secrets.token_urlsafe(32)
    options = f"-c search_path={settings.pg_schema}"
    with psycopg.connect(settings.pg_url, autocommit=True, options=options) as db:
        db.execute(
            "INSERT INTO partner_clients (client_id, partner_id, secret_hash, scopes) VALUES (%s, %s, %s, %s)",
            (client_id, partner_id, HASHER.hash(secret), scopes),
        )
    return client_id, secret
