"""Access tokens: JWTs signed with Ed25519 keys that carry a ``kid``, published as a JWKS.

The key ring holds the current key (which signs) and the previous ones (which still
verify), so keys rotate without downtime: publish the new key, sign with it, retire the
old one after the longest token lifetime. A ring that follows a ``KeySource`` (the shared
key folder, ``ingress.auth.keys``) takes its keys from there and looks again every
``RELOAD_EVERY_S``, and at once (at most every ``UNKNOWN_KID_EVERY_S``) for a ``kid`` it
does not know; a key past its ``retire_at`` verifies nothing. Verification pins the
algorithm to EdDSA (so ``alg: none`` and HS/RS confusion are refused before any signature
check), requires the ``kid`` to be one of the ring's, and checks ``exp``, ``nbf``, ``iat``,
``aud`` and ``iss``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, Literal, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

from topology.signing_keys import RELOAD_EVERY_S, KeyFolderError

#: "anonymous" is no token's: it is the role of a caller without one (``ingress.policy.ANONYMOUS``).
Role = Literal["customer", "partner", "support", "admin", "anonymous"]
ALGORITHM = "EdDSA"
LEEWAY = timedelta(seconds=5)  # clock skew allowed on exp and nbf
#: How soon after one look at the key source a token of an unknown ``kid`` makes the ring look again.
UNKNOWN_KID_EVERY_S = 0.1
log = logging.getLogger(__name__)


class InvalidToken(Exception):
    """The token is not one this ingress issued, or not any more; the message says why."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (customer, support, admin) or a partner, with their roles and scopes."""

    subject: str
    kind: Literal["user", "partner"]
    roles: frozenset[Role]
    scopes: frozenset[str] = frozenset()
    token_id: str = ""
    expires_at: datetime | None = None
    #: when the token was issued (``iat``): an account reinstated takes only tokens issued since
    issued_at: datetime | None = None


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: Ed25519PrivateKey
    #: from when the key verifies nothing (None: as long as the ring holds it)
    retire_at: datetime | None = None

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(uuid.uuid4().hex[:16], Ed25519PrivateKey.generate())

    @cached_property
    def public(self) -> Ed25519PublicKey:  # derived once per key, not per token verified
        return self.private.public_key()

    def jwk(self) -> dict[str, Any]:
        jwk = json.loads(OKPAlgorithm.to_jwk(self.public))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": ALGORITHM}


class KeySource(Protocol):
    """Where a ring takes its keys from (the shared key folder)."""

    def stamp(self) -> object:
        """A value that changes whenever the keys do."""

    def load(self, now: datetime) -> list[SigningKey]:
        """The keys that sign or verify at ``now``, the signing one first; KeyFolderError when there is none."""


@dataclass
class KeyRing:
    """The current signing key and the previous keys that still verify."""

    issuer: str
    audience: str
    current: SigningKey = field(default_factory=SigningKey.generate)
    previous: list[SigningKey] = field(default_factory=list)
    # Tokens this ring verified, with the kid that signed them: a client sends the same access
    # token with every request for its lifetime, and parsing plus the signature check was a
    # tenth of a request's CPU. A hit is re-checked for expiry and for its key still being in
    # the ring; only an exact token string that passed the full check can hit.
    verified: dict[str, tuple[Principal, str]] = field(default_factory=dict, repr=False)
    cache_size: int = 4096
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC), repr=False)
    source: KeySource | None = field(default=None, repr=False)
    _stamp: object = field(default=None, repr=False)
    _looked_at: float = field(default=0.0, repr=False)
    _looked_for_kid_at: float = field(default=float("-inf"), repr=False)
    _looking: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def following(
        cls, issuer: str, audience: str, source: KeySource, clock: Callable[[], datetime] | None = None
    ) -> KeyRing:
        """A ring with ``source``'s keys that follows it; KeyFolderError when it has none."""
        clock = clock or (lambda: datetime.now(UTC))
        stamp = source.stamp()
        current, *previous = source.load(clock())
        ring = cls(issuer, audience, current, previous, clock=clock, source=source)
        ring._stamp, ring._looked_at = stamp, time.monotonic()
        return ring

    def follow(self, every_s: float = RELOAD_EVERY_S, unknown_kid: bool = False) -> None:
        """Take the source's keys again if they changed, looking at most every ``every_s``.

        For a token of an unknown ``kid`` the ring looks at once, but at most every
        ``UNKNOWN_KID_EVERY_S``. Keys that cannot be loaded leave the ring as it was (and are
        tried again at the next look).
        """
        now = time.monotonic()
        if unknown_kid:
            if now - self._looked_for_kid_at < UNKNOWN_KID_EVERY_S:
                return
        elif now - self._looked_at < every_s:
            return
        if self.source is None or not self._looking.acquire(blocking=False):
            return  # nothing to follow, or another thread is looking
        try:
            self._looked_at = now
            if unknown_kid:
                self._looked_for_kid_at = now
            stamp = self.source.stamp()
            if stamp == self._stamp:
                return
            try:
                current, *previous = self.source.load(self.clock())
            except KeyFolderError as err:
                log.warning("signing keys not reloaded, the ring keeps its keys: %s", err)
                return
            self.previous, self.current, self._stamp = previous, current, stamp
            log.info("signing keys reloaded: %s signs, %d more verify", current.kid, len(previous))
        finally:
            self._looking.release()

    def rotate(self, keep: int = 1) -> SigningKey:
        """Sign with a new key from now on; keep ``keep`` previous keys for verification."""
        self.previous = [self.current, *self.previous][:keep]
        self.current = SigningKey.generate()
        return self.current

    def jwks(self) -> dict[str, Any]:
        """The public keys that sign or verify now."""
        self.follow()
        now = self.clock()
        return {"keys": [key.jwk() for key in (self.current, *self.previous) if _verifies(key, now)]}

    def key(self, kid: object) -> SigningKey | None:
        """The ring's key named ``kid`` (current or still kept) while it verifies, if any."""
        now = self.clock()
        return next((k for k in (self.current, *self.previous) if k.kid == kid and _verifies(k, now)), None)

    def issue(self, principal: Principal, ttl: timedelta, now: datetime | None = None) -> str:
        self.follow()
        now = now or datetime.now(UTC)
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": principal.subject,
            "kind": principal.kind,
            "roles": sorted(principal.roles),
            "scope": " ".join(sorted(principal.scopes)),
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": principal.token_id or uuid.uuid4().hex,
        }
        signing = self.current  # one read: a reload may replace it meanwhile
        return jwt.encode(claims, signing.private, algorithm=ALGORITHM, headers={"kid": signing.kid})

    def verify(self, token: str) -> Principal:
        self.follow()
        known = self.verified.get(token)
        if known is not None:
            principal, kid = known
            alive = principal.expires_at is not None and self.clock() < principal.expires_at + LEEWAY
            if alive and self.key(kid) is not None:
                return principal
            self.verified.pop(token, None)
        principal, kid = self._verify(token)
        if len(self.verified) >= self.cache_size:
            self.verified.clear()  # start over: cheaper than tracking age, and rare
        self.verified[token] = (principal, kid)
        return principal

    def _verify(self, token: str) -> tuple[Principal, str]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as err:
            raise InvalidToken(f"malformed token: {err}") from None
        if header.get("alg") != ALGORITHM:
            raise InvalidToken(f"algorithm {header.get('alg')!r} is not accepted")
        key = self.key(header.get("kid"))
        if key is None and self.source is not None:
            self.follow(unknown_kid=True)  # a key another instance signs with since a rotation
            key = self.key(header.get("kid"))
        if key is None:
            raise InvalidToken(f"unknown signing key {header.get('kid')!r} (not this ring's, or retired)")
        try:
            claims = jwt.decode(
                token,
                key.public,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                # exp, nbf and iat are checked below against the ring's clock, the one cached tokens use
                options={
                    "require": ["exp", "nbf", "iat", "sub", "aud", "iss", "jti"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidAudienceError:
            raise InvalidToken("token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("token from another issuer") from None
        except jwt.InvalidTokenError as err:
            raise InvalidToken(f"invalid token: {err}") from None
        roles = frozenset(r for r in claims.get("roles", []) if r in ("customer", "partner", "support", "admin"))
        kind = "partner" if claims.get("kind") == "partner" else "user"
        scopes = frozenset(str(claims.get("scope", "")).split())
        expires, now = _instant(claims["exp"]), self.clock()
        if now >= expires + LEEWAY:
            raise InvalidToken("token expired")
        if now < max(_instant(claims["nbf"]), _instant(claims["iat"])) - LEEWAY:
            raise InvalidToken("token not valid yet")
        issued = _instant(claims["iat"])
        principal = Principal(claims["sub"], kind, roles, scopes, claims["jti"], expires, issued)  # type: ignore[arg-type]
        return principal, key.kid


def _verifies(key: SigningKey, now: datetime) -> bool:
    return key.retire_at is None or now < key.retire_at


def _instant(value: object) -> datetime:
    """A NumericDate claim as a time; anything else makes the token invalid."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"invalid token: a time claim is not a number: {value!r}")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidToken(f"invalid token: time claim out of range: {value!r}") from None
