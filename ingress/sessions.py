"""Registration, login, refresh, logout (users) and the OAuth2 token endpoint (partners)."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import parse_qs

import falcon
import msgspec

from ingress.auth.accounts import Accounts, AuthFailed, EmailTaken
from ingress.auth.tokens import Principal
from ingress.bus import BusUnavailable, CommandBus
from ingress.edge import read_body
from ingress.problems import Problem
from ingress.ratelimit import Limit, RateLimiter
from topology.envelope import Producer, envelop
from topology.messages import RegisterUser
from topology.messages.users import Email, Name
from topology.settings import Settings
from topology.topics import USER_COMMANDS

Password = Annotated[str, msgspec.Meta(min_length=8, max_length=128)]
LOGIN_LIMIT = Limit(per_second=5 / 60, burst=5)  # per email: five tries, then one every 12 s


class RegisterRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    email: Email
    name: Name
    password: Password


class LoginRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    email: Email
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class RefreshRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class LogoutRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


SESSION_REQUESTS: tuple[type[msgspec.Struct], ...] = (RegisterRequest, LoginRequest, RefreshRequest, LogoutRequest)


def _tokens(resp: falcon.Response, access: str, refresh: str | None, expires_in: int) -> None:
    body = {"access_token": access, "token_type": "Bearer", "expires_in": expires_in}
    if refresh is not None:
        body["refresh_token"] = refresh
    resp.media = body
    resp.cache_control = ["no-store"]


class RegisterResource:
    public = True

    def __init__(self, accounts: Accounts, bus: CommandBus, settings: Settings) -> None:
        self.accounts, self.bus, self.settings = accounts, bus, settings

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body, _ = read_body(req, RegisterRequest, self.settings.max_body_bytes)
        try:
            user_id = self.accounts.create(body.email, body.password)
        except EmailTaken:
            raise Problem(409, "email-taken", "this email is registered already") from None
        command = RegisterUser(user_id=user_id, email=body.email, name=body.name)
        command_id = uuid.uuid4().hex
        envelope = envelop(
            command, producer=Producer("user", user_id), occurred_at=datetime.now(UTC), message_id=command_id
        )
        try:
            self.bus.send(USER_COMMANDS, user_id, envelope)
        except BusUnavailable as err:
            self.accounts.forget(user_id)  # nothing half-written: the email is free again
            raise Problem(
                503, "unavailable", "registration could not be taken now", str(err), {"Retry-After": "1"}
            ) from None
        resp.status = falcon.HTTP_202
        resp.media = {"command_id": command_id, "user_id": user_id, "status_url": "/v1/users/me"}


class LoginResource:
    public = True

    def __init__(self, accounts: Accounts, limiter: RateLimiter, settings: Settings) -> None:
        self.accounts, self.limiter, self.settings = accounts, limiter, settings

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body, _ = read_body(req, LoginRequest, self.settings.max_body_bytes)
        verdict = self.limiter.check(body.email.lower(), "login", LOGIN_LIMIT)
        if not verdict.allowed:
            retry = {"Retry-After": str(max(1, verdict.retry_after_s))}
            raise Problem(429, "rate-limited", "too many login attempts", "try again later", retry)
        try:
            pair = self.accounts.login(body.email, body.password)
        except AuthFailed as err:
            raise Problem(401, "invalid-credentials", str(err)) from None
        _tokens(resp, pair.access_token, pair.refresh_token, pair.expires_in)


class RefreshResource:
    public = True

    def __init__(self, accounts: Accounts, settings: Settings) -> None:
        self.accounts, self.settings = accounts, settings

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body, _ = read_body(req, RefreshRequest, self.settings.max_body_bytes)
        try:
            pair = self.accounts.refresh(body.refresh_token)
        except AuthFailed as err:
            raise Problem(401, "invalid-refresh-token", str(err)) from None
        _tokens(resp, pair.access_token, pair.refresh_token, pair.expires_in)


class LogoutResource:
    def __init__(self, accounts: Accounts, settings: Settings) -> None:
        self.accounts, self.settings = accounts, settings

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        principal: Principal = req.context.principal
        body = LogoutRequest()
        if req.content_length:
            body, _ = read_body(req, LogoutRequest, self.settings.max_body_bytes)
        self.accounts.logout(principal, body.refresh_token)
        resp.status = falcon.HTTP_204


class OAuthTokenResource:
    """RFC 6749 client credentials: form-encoded, client authenticated by HTTP Basic or form fields."""

    public = True

    def __init__(self, accounts: Accounts, settings: Settings) -> None:
        self.accounts, self.settings = accounts, settings

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        if (req.content_type or "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            raise Problem(415, "unsupported-media-type", "send application/x-www-form-urlencoded")
        raw = req.bounded_stream.read(4097)
        if len(raw) > 4096:
            raise Problem(413, "too-large", "body too large", "at most 4096 bytes")
        try:
            form = {k: v[0] for k, v in parse_qs(raw.decode(), strict_parsing=False).items()}
        except UnicodeDecodeError:
            raise Problem(400, "invalid_request", error="invalid_request", title="the form is not UTF-8") from None
        client_id, secret = form.get("client_id"), form.get("client_secret")
        basic = req.get_header("Authorization") or ""
        if basic.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(basic[6:], validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise Problem(
                    401, "invalid_client", error="invalid_client", title="malformed Basic credentials"
                ) from None
        if form.get("grant_type") != "client_credentials":
            raise Problem(
                400,
                "unsupported_grant_type",
                error="unsupported_grant_type",
                title="only grant_type=client_credentials is supported",
            )
        if not client_id or not secret or len(client_id) > 64 or len(secret) > 200:
            raise Problem(
                401, "invalid_client", error="invalid_client", title="client_id and client_secret are required"
            )
        try:
            token, scope, expires_in = self.accounts.client_token(client_id, secret, form.get("scope"))
        except AuthFailed:
            raise Problem(
                401, "invalid_client", error="invalid_client", title="unknown client or wrong secret"
            ) from None
        except ValueError as err:
            raise Problem(400, "invalid_scope", error="invalid_scope", title=str(err)) from None
        _tokens(resp, token, None, expires_in)
        resp.media = {**resp.media, "scope": scope}
