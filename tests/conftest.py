"""Fixtures: one real stack per session, and per-test isolation inside it.

The stack is the embedded one (`shopstream stack up`), reused when it is already up.
Each test gets a namespace with a unique topic prefix, PostgreSQL schema, Redis key
prefix, Elasticsearch index prefix and MongoDB database, so tests run in any order.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pymongo
import pytest
import redis
from confluent_kafka.admin import AdminClient, NewTopic
from elasticsearch import Elasticsearch

from ops.stack.launcher import Stack
from topology.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def settings() -> Settings:
    """The settings of the running stack, brought up (or found up) once per session."""
    current = Settings.from_env()
    failed = [row for row in Stack(current).up() if not row.ok]
    if failed:
        pytest.exit(
            "the local stack is not healthy:\n" + "\n".join(f"{r.name}: {r.error}" for r in failed), returncode=3
        )
    return current


@dataclass
class Namespace:
    """Names private to one test, in every store."""

    settings: Settings
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    _topics: list[str] = field(default_factory=list)

    def topic(self, name: str) -> str:
        return f"{self.prefix}.{name}"

    def create_topic(self, name: str, partitions: int = 1, config: dict[str, str] | None = None) -> str:
        topic = self.topic(name)
        admin = AdminClient({"bootstrap.servers": self.settings.bootstrap_servers})
        futures = admin.create_topics([NewTopic(topic, partitions, 1, config=config or {})], operation_timeout=10)
        futures[topic].result(timeout=15)
        self._topics.append(topic)
        return topic

    @property
    def schema(self) -> str:
        return self.prefix

    @property
    def key_prefix(self) -> str:
        return f"{self.prefix}:"

    @property
    def index_prefix(self) -> str:
        return f"{self.prefix}-"

    @property
    def mongo_database(self) -> str:
        return self.prefix


@pytest.fixture
def ns(settings: Settings) -> Iterator[Namespace]:
    namespace = Namespace(settings)
    yield namespace
    if namespace._topics:
        admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
        for future in admin.delete_topics(namespace._topics, operation_timeout=10).values():
            future.result(timeout=15)


@pytest.fixture
def pg(settings: Settings, ns: Namespace) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A primary connection whose search_path is the test's own schema."""
    with psycopg.connect(settings.pg_url, autocommit=True) as conn:
        conn.execute(f'create schema "{ns.schema}"')
        conn.execute(f'set search_path to "{ns.schema}"')
        yield conn
        conn.execute(f'drop schema "{ns.schema}" cascade')


@pytest.fixture
def redis_client(settings: Settings, ns: Namespace) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    yield client
    keys = list(client.scan_iter(match=f"{ns.key_prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def es(settings: Settings, ns: Namespace) -> Iterator[Elasticsearch]:
    client = Elasticsearch(settings.search_url, request_timeout=10)
    yield client
    for name in client.indices.get(index=f"{ns.index_prefix}*", ignore_unavailable=True, allow_no_indices=True):
        client.indices.delete(index=name)
    client.close()


@pytest.fixture
def mongo_db(settings: Settings, ns: Namespace) -> Iterator[pymongo.database.Database[dict[str, object]]]:
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(settings.mongo_url)
    yield client[ns.mongo_database]
    client.drop_database(ns.mongo_database)
    client.close()


@pytest.fixture
def private_settings(settings: Settings, tmp_path: Path) -> Settings:
    """Settings for a second, private stack on free ports under a temporary folder (restart tests)."""
    return Settings(
        stack_dir=tmp_path / "stack",
        tools_dir=settings.tools_dir or settings.stack_dir / "tools",
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        pg_port=free_port(),
        pg_replica_port=free_port(),
        redis_port=free_port(),
        search_port=free_port(),
        mongo_port=free_port(),
        smtp_port=free_port(),
        health_timeout_s=120,
    )
