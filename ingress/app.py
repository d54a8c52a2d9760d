"""The API gateway: ``create_app(settings, ports) -> falcon.App``, served by gunicorn.

Middleware authenticates (Bearer JWT from the key ring) and rate-limits (GCRA in Redis);
resources validate bodies against strict schemas, authorize with ``policy.decide``, turn
each accepted write into a command on Kafka (confirmed before the 202) under an
``Idempotency-Key``, and read from the read models. Every failure is problem+json.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, TypeVar

import falcon
import msgspec
import pymongo
import redis
from elasticsearch import Elasticsearch

from ingress import openapi
from ingress.auth.accounts import Accounts
from ingress.auth.tokens import InvalidToken, KeyRing, Principal
from ingress.bus import CommandBus
from ingress.catalog import MeResource, ProductsResource, RefundsResource, StockResource
from ingress.edge import Commands, authorize, order_resource, read_body
from ingress.exceptions import ReadModelUnavailable
from ingress.metrics import Measure, MetricsResource
from ingress.policy import Resource
from ingress.problems import Problem, install
from ingress.ratelimit import Limit, RateLimiter
from ingress.readmodel import ReadModel, as_json
from ingress.schemas import Accepted, CancelOrderRequest, PlaceOrderRequest
from ingress.sessions import (
    LoginResource,
    LogoutResource,
    OAuthTokenResource,
    RefreshResource,
    RegisterResource,
)
from topology.messages import CancelOrder, Money, OrderLine, PlaceOrder
from topology.settings import Settings
from topology.topics import ORDER_COMMANDS

S = TypeVar("S", bound=msgspec.Struct)
JSON = "application/json"
PRICE_TTL_S = 2.0


@dataclass
class Ports:
    """What the ingress talks to; tests pass fakes for the bus."""

    keys: KeyRing
    bus: CommandBus
    redis: redis.Redis
    reads: ReadModel
    search: Elasticsearch
    mongo: pymongo.MongoClient[dict[str, Any]]


class Authenticate:
    """Bearer tokens on every resource that does not say ``public = True`` (revocation: ``Admit``)."""

    def __init__(self, keys: KeyRing) -> None:
        self.keys = keys

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict[str, Any]
    ) -> None:
        if resource is None or getattr(resource, "public", False):
            return
        header = req.get_header("Authorization") or ""
        scheme, _, token = header.partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="shopstream"'}
        if scheme.lower() != "bearer" or not token:
            raise Problem(401, "unauthenticated", "authentication required", "send a Bearer access token", challenge)
        try:
            principal = self.keys.verify(token.strip())
        except InvalidToken as err:
            raise Problem(401, "invalid-token", "invalid access token", str(err), challenge) from None
        req.context.principal = principal


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
            challenge = {"WWW-Authenticate": 'Bearer realm="shopstream"'}
            raise Problem(401, "invalid-token", "invalid access token", "the token was revoked (logout)", challenge)
        headers = {
            "RateLimit-Limit": str(verdict.limit),
            "RateLimit-Remaining": str(verdict.remaining),
            "RateLimit-Reset": str(verdict.reset_s),
        }
        if not verdict.allowed:
            headers["Retry-After"] = str(max(1, verdict.retry_after_s))
            raise Problem(429, "rate-limited", "too many requests", f"the {route_class} limit is reached", headers)
        resp.set_headers(headers)


class OrdersResource:
    def __init__(self, commands: Commands, reads: ReadModel, settings: Settings) -> None:
        self.commands = commands
        self.reads = reads
        self.settings = settings
        self._price_cache: dict[str, tuple[float, Money]] = {}

    def _prices(self, skus: list[str]) -> dict[str, Money]:
        """Catalog prices, remembered for PRICE_TTL_S per worker (a price change applies within that)."""
        now = time.monotonic()
        known = {sku: hit[1] for sku in skus if (hit := self._price_cache.get(sku)) and now - hit[0] < PRICE_TTL_S}
        missing = [sku for sku in skus if sku not in known]
        if missing:
            query = "SELECT sku, price_amount, currency FROM products WHERE sku = ANY(%s)"
            for r in self.reads.fetch(query, (missing,)).rows:
                known[r["sku"]] = Money(r["price_amount"], r["currency"].strip())
                self._price_cache[r["sku"]] = (now, known[r["sku"]])
            if len(self._price_cache) > 10_000:
                self._price_cache.clear()
        return known

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        principal: Principal = req.context.principal
        authorize(principal, "order.place")
        body, raw = read_body(req, PlaceOrderRequest, self.settings.max_body_bytes)
        skus = [line.sku for line in body.lines]
        if len(set(skus)) != len(skus):
            raise Problem(422, "invalid-body", "each SKU may appear once per order")
        prices = self._prices(skus)
        unknown = sorted(set(skus) - prices.keys())
        if unknown:
            raise Problem(422, "unknown-sku", "unknown products", f"not in the catalog: {', '.join(unknown)}")
        order_id = "o_" + uuid.uuid4().hex[:20]
        lines = [OrderLine(line.sku, line.quantity, prices[line.sku]) for line in body.lines]
        command = PlaceOrder(
            order_id=order_id, customer_id=principal.subject, lines=lines, payment_token=body.payment_token
        )
        answer = Accepted(uuid.uuid4().hex, f"/v1/orders/{order_id}", order_id)
        self.commands.send(req, resp, raw, ORDER_COMMANDS, order_id, command, answer)

    def on_get_one(self, req: falcon.Request, resp: falcon.Response, order_id: str) -> None:
        principal: Principal = req.context.principal
        wait_s = min(req.get_param_as_float("wait", min_value=0) or 0.0, self.settings.read_wait_max_s)
        deadline = time.monotonic() + wait_s
        while True:
            order = self._order(order_id, fresh=wait_s > 0)
            if order is not None or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        resource = Resource(customer_id=order["customer_id"]) if order else Resource(exists=False)
        authorize(principal, "order.read", resource)
        resp.media = order

    def _order(self, order_id: str, fresh: bool) -> dict[str, Any] | None:
        rows = self.reads.fetch(
            "SELECT order_id, customer_id, status, total_amount, currency, placed_at, updated_at, version"
            " FROM orders WHERE order_id = %s",
            (order_id,),
            fresh=fresh,
        ).rows
        if not rows:
            return None
        order = as_json(rows[0])
        lines = self.reads.fetch(
            "SELECT sku, quantity, unit_amount FROM order_lines WHERE order_id = %s ORDER BY line_no",
            (order_id,),
            fresh=fresh,
        ).rows
        history = self.reads.fetch(
            "SELECT version, status, occurred_at FROM order_history WHERE order_id = %s ORDER BY version",
            (order_id,),
            fresh=fresh,
        ).rows
        order["lines"] = lines
        order["history"] = [as_json(h) for h in history]
        return order

    def on_post_cancel(self, req: falcon.Request, resp: falcon.Response, order_id: str) -> None:
        principal: Principal = req.context.principal
        body, raw = read_body(req, CancelOrderRequest, self.settings.max_body_bytes)
        authorize(principal, "order.cancel", order_resource(self.reads, order_id))
        answer = Accepted(uuid.uuid4().hex, f"/v1/orders/{order_id}", order_id)
        self.commands.send(
            req, resp, raw, ORDER_COMMANDS, order_id, CancelOrder(order_id=order_id, reason=body.reason), answer
        )


class Public:
    public = True


class Health(Public):
    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}

    def on_get_ready(self, req: falcon.Request, resp: falcon.Response) -> None:
        checks: dict[str, str] = {}
        try:
            self.ports.redis.ping()
            checks["redis"] = "ok"
        except redis.RedisError as err:
            checks["redis"] = f"down: {err}"
        try:
            self.ports.reads.fetch("SELECT 1 AS ok")
            checks["postgres"] = "ok"
        except ReadModelUnavailable as err:
            checks["postgres"] = f"down: {err}"
        ready = all(v == "ok" for v in checks.values())
        resp.status = falcon.HTTP_200 if ready else falcon.HTTP_503
        resp.media = {"status": "ready" if ready else "not ready", "checks": checks}


class Keys(Public):
    def __init__(self, keys: KeyRing) -> None:
        self.keys = keys

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.keys.jwks()
        resp.cache_control = ["public", "max-age=300"]


class OpenApi(Public):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = openapi.document()


def create_app(settings: Settings, ports: Ports) -> falcon.App:  # type: ignore[type-arg]
    accounts = Accounts(settings, ports.keys, ports.redis)
    limiter = RateLimiter(ports.redis, settings.redis_prefix)
    middleware: list[Any] = [Measure(), Authenticate(ports.keys), Admit(limiter, accounts, settings), StrictQuery()]
    app = falcon.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    install(app)
    commands = Commands(ports.bus, ports.redis, settings)
    orders = OrdersResource(commands, ports.reads, settings)
    health = Health(ports)
    app.add_route("/v1/orders", orders)
    app.add_route("/v1/orders/{order_id}", orders, suffix="one")
    app.add_route("/v1/orders/{order_id}/cancel", orders, suffix="cancel")
    products = ProductsResource(commands, ports.reads, ports.search, settings)
    stock = StockResource(commands, ports.reads, ports.redis, settings)
    me = MeResource(commands, ports.reads, ports.mongo, settings)
    app.add_route("/v1/orders/{order_id}/refunds", RefundsResource(commands, ports.reads, settings))
    app.add_route("/v1/products", products)
    app.add_route("/v1/products/{sku}", products, suffix="one")
    app.add_route("/v1/stock/{sku}", stock, suffix="one")
    app.add_route("/v1/stock/{sku}/adjustments", stock, suffix="adjust")
    app.add_route("/v1/users/me", me)
    app.add_route("/v1/users/me/notifications", me, suffix="notifications")
    app.add_route("/v1/users", RegisterResource(accounts, ports.bus, settings))
    app.add_route("/v1/auth/login", LoginResource(accounts, limiter, settings))
    app.add_route("/v1/auth/refresh", RefreshResource(accounts, settings))
    app.add_route("/v1/auth/logout", LogoutResource(accounts, settings))
    app.add_route("/oauth/token", OAuthTokenResource(accounts, settings))
    app.add_route("/healthz", health)
    app.add_route("/readyz", health, suffix="ready")
    app.add_route("/.well-known/jwks.json", Keys(ports.keys))
    app.add_route("/openapi.json", OpenApi())
    app.add_route("/metrics", MetricsResource())
    return app
