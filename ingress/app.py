"""The API gateway's composition root: ``create_app(settings, ports) -> falcon.App``, served by gunicorn.

Middleware measures, authenticates (Bearer JWT from the key ring), admits (revocation and
GCRA rate limits in Redis) and refuses undeclared query parameters; each operation of
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

from ingress import openapi, routes
from ingress.auth.accounts import Accounts
from ingress.auth.tokens import KeyRing
from ingress.bus import CommandBus
from ingress.commands import Commands
from ingress.me import MeResource
from ingress.middleware import Admit, Authenticate, Measure, StrictQuery
from ingress.orders import OrdersResource
from ingress.problems import install
from ingress.products import ProductsResource
from ingress.queries import Queries
from ingress.ratelimit import RateLimiter
from ingress.readmodel import ReadModel
from ingress.service import DocumentResource, HealthResource, KeysResource, MetricsResource
from ingress.sessions import ClientTokenResource, LoginResource, LogoutResource, RefreshResource, RegisterResource
from ingress.stock import StockResource
from topology.settings import Settings


@dataclass
class Ports:
    """The clients the ingress talks to: ``wsgi`` makes them from the settings, tests on their private names."""

    keys: KeyRing
    bus: CommandBus
    redis: redis.Redis
    reads: ReadModel
    search: Elasticsearch
    mongo: pymongo.MongoClient[dict[str, Any]]


def create_app(settings: Settings, ports: Ports) -> falcon.App:  # type: ignore[type-arg]
    accounts = Accounts(settings, ports.keys, ports.redis)
    limiter = RateLimiter(ports.redis, settings.redis_prefix)
    commands = Commands(ports.bus, ports.redis, settings)
    queries = Queries(ports.reads, ports.redis, ports.search, ports.mongo, settings)
    resources: dict[type, object] = {
        r.__class__: r
        for r in (
            OrdersResource(commands, queries, settings),
            ProductsResource(commands, queries, settings),
            StockResource(commands, queries, settings),
            MeResource(commands, queries, settings),
            RegisterResource(accounts, commands, settings),
            LoginResource(accounts, limiter, settings),
            RefreshResource(accounts, settings),
            LogoutResource(accounts, settings),
            ClientTokenResource(accounts),
            HealthResource(queries),
            KeysResource(ports.keys),
            DocumentResource(openapi.encoded()),
            MetricsResource(),
        )
    }
    middleware: list[Any] = [
        Measure(),
        Authenticate(ports.keys, routes.public_paths()),
        Admit(limiter, accounts, settings),
        StrictQuery(),
    ]
    app = falcon.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    install(app)
    for path, operations in routes.by_path().items():
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
