"""The API gateway's composition root: ``create_app(settings, ports) -> falcon.App``, served by gunicorn.

Middleware measures, authenticates (Bearer JWT from the key ring), admits (revocation and
GCRA rate limits in Redis, per client address, credential route and caller), answers CORS
and sets the security headers, and refuses undeclared query parameters; each operation of
``routes.py`` is routed to its resource, which validates the body against its Struct,
authorizes with the policy, reads through ``Queries`` or sends a command through
``Commands``, and answers with an answer Struct. Every failure is problem+json.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import falcon
import pymongo
import redis
from elasticsearch import Elasticsearch

from ingress import openapi, routes, tracing
from ingress.access_log import AccessLog
from ingress.address_book import AddressBookResource
from ingress.addresses import ClientAddress, networks
from ingress.auth.accounts import Accounts
from ingress.auth.tokens import KeyRing
from ingress.bus import CommandBus
from ingress.commands import Commands
from ingress.devices import DevicesResource
from ingress.hashing import HashBudget
from ingress.me import MeResource
from ingress.middleware import Admit, Authenticate, Browser, Measure, StrictQuery
from ingress.orders import OrdersResource
from ingress.payment_methods import PaymentMethodsResource
from ingress.pending import PendingOwners
from ingress.problems import install
from ingress.products import ProductsResource
from ingress.queries import Queries
from ingress.ratelimit import RateLimiter
from ingress.readmodel import ReadModel
from ingress.service import DocumentResource, HealthResource, KeysResource
from ingress.sessions import ClientTokenResource, LoginResource, LogoutResource, RefreshResource, RegisterResource
from ingress.stock import StockResource
from ingress.users import UsersResource
from ingress.vault import CardVault, HttpVault
from ingress.wallets import Wallets
from topology.settings import Settings


@dataclass
class Ports:
    """The clients the ingress talks to: ``wsgi`` makes them from the settings, tests on their private names.

    ``vault``, the payment provider's customer vault, is made from the settings when not given.
    """

    keys: KeyRing
    bus: CommandBus
    redis: redis.Redis
    reads: ReadModel
    search: Elasticsearch
    mongo: pymongo.MongoClient[dict[str, Any]]
    vault: CardVault | None = None


def create_app(settings: Settings, ports: Ports) -> falcon.App:  # type: ignore[type-arg]
    accounts = Accounts(settings, ports.keys, ports.redis)
    limiter = RateLimiter(ports.redis, settings.redis_prefix)
    commands = Commands(ports.bus, ports.redis, settings)
    queries = Queries(ports.reads, ports.redis, ports.search, ports.mongo, settings)
    pending = PendingOwners(ports.redis, settings.redis_prefix, settings.pending_owner_ttl_s)
    hashes = HashBudget(settings.password_hashes_per_s, settings.password_hash_burst)
    wallets = Wallets(ports.vault or HttpVault(settings), ports.reads, settings)
    resources: dict[type, object] = {
        r.__class__: r
        for r in (
            OrdersResource(commands, queries, settings, pending, wallets),
            PaymentMethodsResource(wallets, settings),
            ProductsResource(commands, queries, settings, pending),
            StockResource(commands, queries, settings, pending),
            MeResource(commands, queries, settings),
            AddressBookResource(commands, queries, settings, pending),
            DevicesResource(commands, queries, settings, pending),
            UsersResource(queries),
            RegisterResource(accounts, commands, settings, hashes),
            LoginResource(accounts, limiter, settings, hashes),
            RefreshResource(accounts, limiter, settings),
            LogoutResource(accounts, settings),
            ClientTokenResource(accounts, limiter, hashes),
            HealthResource(queries),
            KeysResource(ports.keys),
            DocumentResource(openapi.encoded()),
        )
    }
    paths = routes.by_path()
    middleware: list[Any] = [
        *tracing.middleware(),  # first in, last out: its span holds every other step
        AccessLog(ClientAddress(networks(settings.trusted_proxies))),  # after tracing: the span is still current
        *([Measure()] if settings.metrics_enabled else []),
        Authenticate(ports.keys, routes.public_paths(), routes.open_operations()),
        Admit(
            limiter,
            accounts,
            settings,
            ClientAddress(networks(settings.trusted_proxies)),
            {op.path: f"credentials:{op.route.operation}" for op in routes.OPERATIONS if op.credentials},
            health=(routes.LIVENESS.path, routes.READINESS.path),
            anyone=routes.open_operations(),
        ),
        Browser(
            [o.strip() for o in settings.cors_origins.split(",") if o.strip()],
            settings.cors_max_age_s,
            {path: [op.method for op in ops] for path, ops in paths.items()},
        ),
        StrictQuery(),
    ]
    app = falcon.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    install(app)
    for path, operations in paths.items():
        first = operations[0]
        resource = resources[first.resource]
        declared = {op.method for op in operations}
        answered = set(falcon.routing.map_http_methods(resource, suffix=first.suffix))
        if answered != declared:
            raise ValueError(
                f"{path}: {first.resource.__name__} answers {sorted(answered)}, declared {sorted(declared)}"
            )
        app.add_route(path, resource, suffix=first.suffix)
    return app
