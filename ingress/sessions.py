"""Sessions: registration, login, refresh, logout (users) and the OAuth2 token endpoint (partners).

``POST /v1/users`` registers a customer (the credentials are written here, the profile
comes from the users flow), ``POST /v1/auth/login`` and ``/refresh`` answer a token pair,
``POST /v1/auth/logout`` ends the session, ``POST /oauth/token`` answers a partner's token
(RFC 6749 client credentials). Token answers are never cached.

Besides the per-address limits every credential route has (``middleware.Admit``), each is
limited per the account it names: login per email, refresh per the token's user, partner
tokens per client id. Every password hash or verification takes its share of the
process's ``HashBudget`` first. An account suspended or closed cannot log in or refresh (403).
"""

from __future__ import annotations

import base64
import binascii
import uuid

import falcon

from ingress import answers
from ingress.auth.accounts import AccountNotActive, Accounts, AuthFailed, EmailTaken, TokenPair, account_not_active
from ingress.auth.tokens import Principal
from ingress.bodies import read_body, read_form
from ingress.bus import BusUnavailable
from ingress.commands import Commands
from ingress.hashing import HashBudget
from ingress.problems import Problem
from ingress.ratelimit import Limit, RateLimiter
from ingress.schemas import LoginRequest, LogoutRequest, RefreshRequest, RegisterRequest
from topology.envelope import Producer
from topology.messages import RegisterUser
from topology.processes import GET_PROFILE
from topology.settings import Settings
from topology.topics import USER_COMMANDS

LOGIN_LIMIT = Limit(per_second=5 / 60, burst=5)  # per email: five tries, then one every 12 s
REFRESH_LIMIT = Limit(per_second=1 / 6, burst=10)  # per user: ten, then one every 6 s
CLIENT_LIMIT = Limit(per_second=1 / 12, burst=10)  # per client id: ten, then five a minute
NO_STORE = ["no-store"]


def _limit(limiter: RateLimiter, account: str, route_class: str, limit: Limit, title: str) -> None:
    """Count one attempt on ``account``; 429 with Retry-After when it has had too many."""
    verdict = limiter.check(account, route_class, limit)
    if not verdict.allowed:
        retry = {"Retry-After": str(max(1, verdict.retry_after_s))}
        raise Problem(429, "rate-limited", title, "try again later", retry)


def _session(resp: falcon.Response, pair: TokenPair) -> None:
    answers.write(resp, answers.SessionTokens(pair.access_token, "Bearer", pair.expires_in, pair.refresh_token))
    resp.cache_control = NO_STORE


class RegisterResource:
    def __init__(self, accounts: Accounts, commands: Commands, settings: Settings, hashes: HashBudget) -> None:
        self.accounts, self.commands, self.settings, self.hashes = accounts, commands, settings, hashes

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body, _ = read_body(req, RegisterRequest, self.settings.max_body_bytes)
        self.hashes.take()
        try:
            user_id = self.accounts.create(body.email, body.password)
        except EmailTaken:
            raise Problem(409, "email-taken", "this email is registered already") from None
        command = RegisterUser(user_id=user_id, email=body.email, name=body.name)
        command_id = uuid.uuid4().hex
        try:
            self.commands.deliver(USER_COMMANDS, user_id, command, Producer("user", user_id), command_id)
        except BusUnavailable as err:
            self.accounts.forget(user_id)  # nothing half-written: the email is free again
            raise Problem(
                503, "unavailable", "registration could not be taken now", str(err), {"Retry-After": "1"}
            ) from None
        answers.write(resp, answers.Registered(command_id, user_id, GET_PROFILE.path), 202)


class LoginResource:
    def __init__(self, accounts: Accounts, limiter: RateLimiter, settings: Settings, hashes: HashBudget) -> None:
        self.accounts, self.limiter, self.settings, self.hashes = accounts, limiter, settings, hashes

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body, _ = read_body(req, LoginRequest, self.settings.max_body_bytes)
        _limit(self.limiter, body.email.lower(), "login", LOGIN_LIMIT, "too many login attempts")
        self.hashes.take()
        try:
            pair = self.accounts.login(body.email, body.password)
        except AuthFailed as err:
            raise Problem(401, "invalid-credentials", str(err)) from None
        except AccountNotActive as err:
            raise account_not_active(err.status) from None
        _session(resp, pair)


class RefreshResource:
    def __init__(self, accounts: Accounts, limiter: RateLimiter, settings: Settings) -> None:
        self.accounts, self.limiter, self.settings = accounts, limiter, settings

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body, _ = read_body(req, RefreshRequest, self.settings.max_body_bytes)
        account = self.accounts.refresh_account(body.refresh_token)
        if account is not None:
            _limit(self.limiter, f"user:{account}", "refresh", REFRESH_LIMIT, "too many refreshes")
        try:
            pair = self.accounts.refresh(body.refresh_token)
        except AuthFailed as err:
            raise Problem(401, "invalid-refresh-token", str(err)) from None
        except AccountNotActive as err:
            raise account_not_active(err.status) from None
        _session(resp, pair)


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


class ClientTokenResource:
    """RFC 6749 client credentials: form-encoded, the client authenticated by HTTP Basic or by form fields."""

    def __init__(self, accounts: Accounts, limiter: RateLimiter, hashes: HashBudget) -> None:
        self.accounts, self.limiter, self.hashes = accounts, limiter, hashes

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = read_form(req)
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
        _limit(self.limiter, f"client:{client_id}", "client-token", CLIENT_LIMIT, "too many token requests")
        self.hashes.take()
        try:
            token, scope, expires_in = self.accounts.client_token(client_id, secret, form.get("scope"))
        except AuthFailed:
            raise Problem(
                401, "invalid_client", error="invalid_client", title="unknown client or wrong secret"
            ) from None
        except ValueError as err:
            raise Problem(400, "invalid_scope", error="invalid_scope", title=str(err)) from None
        answers.write(resp, answers.ClientToken(token, "Bearer", expires_in, scope))
        resp.cache_control = NO_STORE
