"""The ingress app in process, through falcon's test client, with the clients its ports hold."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import falcon.testing
import psycopg
import pymongo
import redis
from elasticsearch import Elasticsearch

from ingress.app import Ports, create_app
from ingress.auth.tokens import KeyRing, Principal
from ingress.bus import KafkaBus
from ingress.readmodel import ReadModel
from topology.settings import Settings


class Api:
    def __init__(self, settings: Settings, keys: KeyRing, bus: KafkaBus) -> None:
        self.settings = settings
        self.keys = keys
        self.reads = ReadModel(settings)
        self.redis = redis.Redis.from_url(settings.redis_url)
        self.search = Elasticsearch(settings.search_url, request_timeout=10)
        self.mongo: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(settings.mongo_url, tz_aware=True)
        ports = Ports(keys, bus, self.redis, self.reads, self.search, self.mongo)
        self.client = falcon.testing.TestClient(create_app(settings, ports))

    def token(self, subject: str, *roles: str, kind: str = "user") -> str:
        principal = Principal(subject, kind, frozenset(roles))  # type: ignore[arg-type]
        return self.keys.issue(principal, timedelta(minutes=5))

    def call(self, method: str, path: str, token: str | None, body: Any = None, **kw: Any) -> falcon.testing.Result:
        headers = dict(kw.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        return self.client.simulate_request(method, path, headers=headers, body=body, **kw)

    def sql(self, statement: str, *params: object) -> None:
        with psycopg.connect(
            self.settings.pg_url, autocommit=True, options=f"-c search_path={self.settings.pg_schema}"
        ) as c:
            c.execute(statement, params)  # type: ignore[arg-type]
        assert self.reads.fetch("SELECT 1 AS ok", fresh=True).source == "replica", "the replica has the write"
