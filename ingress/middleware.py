"""The middleware every request passes, in order: ``Measure``, ``Authenticate``, ``Admit``, ``StrictQuery``.

``Measure`` counts and times requests (Prometheus), ``Authenticate`` verifies the Bearer
token wherever the route declaration does not make the path public, ``Admit`` asks Redis
once whether the token was revoked and whether the caller is over its rate limit, and
``StrictQuery`` refuses query parameters the OpenAPI document does not declare.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import falcon

from ingress import openapi
from ingress.auth.accounts import Accounts
from ingress.auth.tokens import InvalidToken, KeyRing, Principal
from ingress.metrics import LATENCY, METHODS, REQUESTS
from ingress.problems import Problem
from ingress.ratelimit import Limit, RateLimiter
from topology.settings import Settings

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="shopstream"'}


class Measure:
    """Counts and times every request; the labelled series are looked up once each (``labels`` takes a lock)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, int], Any] = {}
        self._times: dict[tuple[str, str], Any] = {}

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: object, ok: bool) -> None:
        route = req.uri_template or "unmatched"
        method = req.method if req.method in METHODS else "OTHER"  # clients choose the method: bound the series
        key = (route, method, resp.status_code)
        count = self._counts.get(key)
        if count is None:
            count = self._counts.setdefault(key, REQUESTS.labels(*key))
        count.inc()
        started = getattr(req.context, "started", None)
        if started is not None:
            timer = self._times.get(key[:2])
            if timer is None:
                timer = self._times.setdefault(key[:2], LATENCY.labels(route, method))
            timer.observe(time.perf_counter() - started)


class Authenticate:
    """Bearer tokens on every path but the ``public`` ones (revocation: ``Admit``)."""

    def __init__(self, keys: KeyRing, public: Iterable[str]) -> None:
        self.keys = keys
        self.public = frozenset(public)

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict[str, Any]
    ) -> None:
        if resource is None or req.uri_template in self.public:
            return
        header = req.get_header("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Problem(401, "unauthenticated", "authentication required", "send a Bearer access token", CHALLENGE)
        try:
            principal = self.keys.verify(token.strip())
        except InvalidToken as err:
            raise Problem(401, "invalid-token", "invalid access token", str(err), CHALLENGE) from None
        req.context.principal = principal


class Admit:
    """The caller's one Redis round trip per request: a logged-out token, or over the limit.

    A revoked (logged-out) access token gets 401; a caller over its GCRA limit for the route
    class (reads, writes) gets 429 with Retry-After. Both are asked of Redis in one command.
    """

    def __init__(self, limiter: RateLimiter, accounts: Accounts, settings: Settings) -> None:
        self.limiter = limiter
        self.accounts = accounts
        self.limits = {
            "write": Limit(settings.rate_writes_per_s, settings.rate_burst),
            "read": Limit(settings.rate_reads_per_s, settings.rate_burst),
        }

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict[str, Any]
    ) -> None:
        principal: Principal | None = getattr(req.context, "principal", None)
        if principal is None:
            return
        route_class = "read" if req.method in ("GET", "HEAD") else "write"
        verdict = self.limiter.check(
            f"{principal.kind}:{principal.subject}",
            route_class,
            self.limits[route_class],
            flag=self.accounts.revocation_key(principal),
        )
        if verdict.flagged:
            raise Problem(401, "invalid-token", "invalid access token", "the token was revoked (logout)", CHALLENGE)
        headers = {
            "RateLimit-Limit": str(verdict.limit),
            "RateLimit-Remaining": str(verdict.remaining),
            "RateLimit-Reset": str(verdict.reset_s),
        }
        if not verdict.allowed:
            headers["Retry-After"] = str(max(1, verdict.retry_after_s))
            raise Problem(429, "rate-limited", "too many requests", f"the {route_class} limit is reached", headers)
        resp.set_headers(headers)


class StrictQuery:
    """Query parameters the document does not declare for the operation are refused (400)."""

    def __init__(self) -> None:
        self.allowed: dict[tuple[str, str], frozenset[str]] = {
            (path, method.upper()): frozenset(p["name"] for p in op.get("parameters", []) if p["in"] == "query")
            for path, item in openapi.document()["paths"].items()
            for method, op in item.items()
        }

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict[str, Any]
    ) -> None:
        allowed = self.allowed.get((req.uri_template or "", req.method))
        if allowed is None:
            return
        unknown = sorted(set(req.params) - allowed)
        if unknown:
            raise Problem(400, "invalid-query", "unknown query parameters", ", ".join(unknown)[:200])
