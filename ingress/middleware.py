"""The middleware every request passes, in order: Measure, Authenticate, Admit, Browser, StrictQuery.

``Measure`` counts and times requests (Prometheus), ``Authenticate`` verifies the Bearer
token wherever the route declaration does not make the path public (on an operation open to
anyone, only when one is sent), ``Admit`` asks Redis once whether the client address, the
route's credential limit, the caller (or, without a token, the address's anonymous limit) is
over its rate limit and whether the token was revoked (a request without a valid token is counted
before it is refused), ``Browser`` answers CORS preflights and puts the security headers on
every answer, and ``StrictQuery`` refuses query parameters the OpenAPI document does not declare.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

import falcon
import redis

from ingress import openapi
from ingress.addresses import ClientAddress
from ingress.auth.accounts import Accounts, account_not_active
from ingress.auth.tokens import InvalidToken, KeyRing, Principal
from ingress.exceptions import StoreUnavailable
from ingress.metrics import LATENCY, METHODS, REQUESTS, UNCHECKED
from ingress.problems import Problem
from ingress.ratelimit import Cell, Limit, RateLimiter
from topology.settings import Settings
from topology.stores import read_account_state

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="shopstream"'}


#: A control character (NUL included) in a path parameter.
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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
    """Bearer tokens on every path but the ``public`` ones (revocation: ``Admit``).

    A request without a valid token is not refused here but marked (``req.context.refused``):
    ``Admit`` counts it against its client address first, so callers without a token are
    limited too.
    """

    def __init__(self, keys: KeyRing, public: Iterable[str], anyone: Iterable[tuple[str, str]] = ()) -> None:
        self.keys = keys
        self.public = frozenset(public)
        self.anyone = frozenset(anyone)  # (path, method): a token is verified when one is sent

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict[str, Any]
    ) -> None:
        if resource is None or req.uri_template in self.public or req.method == "OPTIONS":
            return  # OPTIONS: a CORS preflight carries no credentials (``Browser``)
        header = req.get_header("Authorization")
        if header is None and (req.uri_template, req.method) in self.anyone:
            return  # no principal: the resource answers ``ANONYMOUS``
        header = header or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            req.context.refused = Problem(
                401, "unauthenticated", "authentication required", "send a Bearer access token", CHALLENGE
            )
            return
        try:
            req.context.principal = self.keys.verify(token.strip())
        except InvalidToken as err:
            req.context.refused = Problem(401, "invalid-token", "invalid access token", str(err), CHALLENGE)


class Admit:
    """Every request's one Redis round trip: its limits, and whether its token was logged out.

    Each request is counted against its client address (``ClientAddress``: the socket's peer,
    or what trusted proxies saw); a route that checks credentials also against that route's
    own limit for the address; an authenticated one also against the caller's limit for the
    route class (reads, writes); one without a token, on an operation open to anyone, also
    against the address's anonymous limit. Over any of them: 429 with Retry-After. Then a request without
    a valid token gets its 401, a revoked (logged-out) token gets 401, a user's token of an account
    suspended or closed gets 403, and one issued before its account was reinstated 401. All of it is one
    Redis command. When Redis does not answer, requests are refused (503), but for the
    ``health`` paths, which answer for themselves (readiness says Redis is down).
    """

    def __init__(
        self,
        limiter: RateLimiter,
        accounts: Accounts,
        settings: Settings,
        addresses: ClientAddress,
        credentials: Mapping[str, str],
        health: Iterable[str] = (),
        anyone: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.limiter = limiter
        self.anyone = frozenset(anyone)
        self.anonymous = Limit(settings.rate_anonymous_per_s, settings.rate_anonymous_burst)
        self.health = frozenset(health)
        self.accounts = accounts
        self.addresses = addresses
        self.credentials = dict(credentials)  # path -> the name its credential limit is counted under
        self.address = Limit(settings.rate_address_per_s, settings.rate_address_burst)
        self.credential = Limit(settings.rate_credentials_per_s, settings.rate_credentials_burst)
        self.fail_open = settings.rate_limit_redis_down == "open"
        self.limits = {
            "write": Limit(settings.rate_writes_per_s, settings.rate_burst),
            "read": Limit(settings.rate_reads_per_s, settings.rate_burst),
        }

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict[str, Any]
    ) -> None:
        client = self.addresses.of(req.remote_addr or "", req.get_header("X-Forwarded-For"))
        cells = [Cell(f"ip:{client}", "any", self.address)]
        credential = self.credentials.get(req.uri_template or "")
        if credential is not None:
            cells.append(Cell(f"ip:{client}", credential, self.credential))
        principal: Principal | None = getattr(req.context, "principal", None)
        route_class = "read" if req.method in ("GET", "HEAD") else "write"
        if principal is not None:
            cells.append(Cell(f"{principal.kind}:{principal.subject}", route_class, self.limits[route_class]))
        elif (req.uri_template, req.method) in self.anyone and req.get_header("Authorization") is None:
            cells.append(Cell(f"ip:{client}", "anonymous", self.anonymous))
        flag = self.accounts.revocation_key(principal) if principal is not None else None
        watch = self.accounts.state_key(principal) if principal is not None and principal.kind == "user" else None
        try:
            verdict = self.limiter.check_all(cells, flag=flag, watch=watch)
        except redis.RedisError as err:
            if req.uri_template in self.health:
                return
            if not self.fail_open:
                raise StoreUnavailable("rate limits are unavailable", str(err)) from None
            UNCHECKED.inc()  # SHOP_RATE_LIMIT_REDIS_DOWN=open: on, unchecked by limits and logouts
            unauthenticated: Problem | None = getattr(req.context, "refused", None)
            if unauthenticated is not None:
                raise unauthenticated from None
            return
        if not verdict.allowed:
            which = verdict.cell.route_class if verdict.cell else route_class
            limit = "this client address's" if which == "any" else f"the {which}"
            raise Problem(429, "rate-limited", "too many requests", f"{limit} limit is reached", verdict.headers)
        refused: Problem | None = getattr(req.context, "refused", None)
        if refused is not None:
            raise refused
        if verdict.flagged:
            raise Problem(401, "invalid-token", "invalid access token", "the token was revoked (logout)", CHALLENGE)
        if verdict.watched and principal is not None:
            status, since = read_account_state(verdict.watched)
            if status != "active":
                raise account_not_active(status)
            if principal.issued_at is None or principal.issued_at.timestamp() < since:
                why = "the token was issued before the account was reinstated; log in again"
                raise Problem(401, "invalid-token", "invalid access token", why, CHALLENGE)
        resp.set_headers(verdict.headers)


#: What every answer carries: HTTPS only from now on, no content sniffing, no referrer, no framing.
SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
#: The request headers a browser may send cross-origin, and the answer headers it may read.
CORS_REQUEST_HEADERS = "Authorization, Content-Type, Idempotency-Key, traceparent"
CORS_EXPOSED_HEADERS = (
    "Location, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Idempotent-Replayed"
)


class Browser:
    """CORS for the listed origins, and the security headers on every answer.

    A preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from a listed origin for
    a method the path answers gets 204 with the allowed methods, headers and max-age; any
    other preflight gets 403 and no CORS headers. An answer to a listed origin names it in
    ``Access-Control-Allow-Origin``; any other origin gets none, so its browser keeps the
    answer from its page. Every answer is ``Cache-Control: no-store`` unless it is public and
    says otherwise (the signing keys); an authenticated one always is.
    """

    def __init__(self, origins: Iterable[str], max_age_s: int, methods: Mapping[str, Iterable[str]]) -> None:
        self.origins = frozenset(origins)
        self.max_age = str(max_age_s)
        self.methods = {path: ", ".join(sorted(ms)) for path, ms in methods.items()}

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict[str, Any]
    ) -> None:
        wanted = req.get_header("Access-Control-Request-Method")
        if req.method != "OPTIONS" or wanted is None or resource is None:
            return
        req.context.preflight = True  # answered here, with CORS headers only when allowed
        origin = req.get_header("Origin")
        allowed = self.methods.get(req.uri_template or "", "")
        if origin not in self.origins or wanted not in allowed.split(", "):
            raise Problem(403, "cors-refused", "cross-origin request refused", f"{origin or 'no origin'}: {wanted}")
        resp.set_headers(
            {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": allowed,
                "Access-Control-Allow-Headers": CORS_REQUEST_HEADERS,
                "Access-Control-Max-Age": self.max_age,
            }
        )
        resp.status = falcon.HTTP_204
        resp.complete = True

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: object, ok: bool) -> None:
        resp.set_headers(SECURITY_HEADERS)
        authenticated = getattr(req.context, "principal", None) is not None or req.get_header("Authorization")
        if authenticated or resp.get_header("Cache-Control") is None:
            resp.cache_control = ["no-store"]
        if self.origins:
            resp.append_header("Vary", "Origin")
        origin = req.get_header("Origin")
        if origin in self.origins and not getattr(req.context, "preflight", False):
            resp.set_header("Access-Control-Allow-Origin", origin or "")
            resp.set_header("Access-Control-Expose-Headers", CORS_EXPOSED_HEADERS)


class StrictQuery:
    """Undeclared query parameters and path parameters holding a control character are refused (400)."""

    def __init__(self) -> None:
        self.allowed: dict[tuple[str, str], frozenset[str]] = {
            (path, method.upper()): frozenset(p["name"] for p in op.get("parameters", []) if p["in"] == "query")
            for path, item in openapi.document()["paths"].items()
            for method, op in item.items()
        }

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict[str, Any]
    ) -> None:
        for name, value in params.items():  # a path segment no store can hold (PostgreSQL text refuses NUL)
            if isinstance(value, str) and CONTROL.search(value):
                raise Problem(400, "invalid-path", "the path holds a control character", f"in {name}")
        allowed = self.allowed.get((req.uri_template or "", req.method))
        if allowed is None:
            return
        unknown = sorted(set(req.params) - allowed)
        if unknown:
            raise Problem(400, "invalid-query", "unknown query parameters", ", ".join(unknown)[:200])
