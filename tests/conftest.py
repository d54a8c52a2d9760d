"""Fixtures: one real stack per session, and per-test isolation inside it.

The stack is the embedded one (`shopstream stack up`), reused when it is already up.
Each test that asks for ``ns`` gets a ``Scope`` (tests/support/scope.py): its own topic
prefix, PostgreSQL schema, Redis key prefix, search index prefix and MongoDB database,
removed when the test ends, so tests run in any order.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pymongo
import pytest
import redis
from elasticsearch import Elasticsearch

from ops.stack.launcher import Stack
from tests.support.processes import free_port
from tests.support.scope import Scope
from topology.settings import Settings

#: ``live_system``: one whole system for the session's observability tests, started on first use.
pytest_plugins = ["tests.support.live"]


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


@pytest.fixture
def ns(settings: Settings) -> Iterator[Scope]:
    """Names private to the test in every store; what the test made under them is removed after it."""
    scope = Scope(settings)
    yield scope
    scope.close()


@pytest.fixture
def pg(settings: Settings, ns: Scope) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A primary connection whose search_path is the test's own (empty) schema."""
    with psycopg.connect(settings.pg_url, autocommit=True) as conn:
        conn.execute(f'create schema "{ns.schema}"')
        conn.execute(f'set search_path to "{ns.schema}"')
        yield conn


@pytest.fixture
def redis_client(settings: Settings, ns: Scope) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def es(settings: Settings, ns: Scope) -> Iterator[Elasticsearch]:
    client = Elasticsearch(settings.search_url, request_timeout=10)
    yield client
    client.close()


@pytest.fixture
def mongo_db(settings: Settings, ns: Scope) -> Iterator[pymongo.database.Database[dict[str, object]]]:
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(settings.mongo_url)
    yield client[ns.mongo_database]
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
        prometheus_port=free_port(),
        alertmanager_port=free_port(),
        health_timeout_s=120,
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests on the session's one whole system (``live_system``) run last, its fault tests after them all.

    Its first user starts it and it stays up to the session's end: gathered at the end, it runs
    beside no other test's processes, and the faults (which restart its processes) come last.
    """

    def rank(item: pytest.Item) -> int:
        if "live_system" not in getattr(item, "fixturenames", ()):
            return 0
        return 2 if item.get_closest_marker("faults") else 1

    items.sort(key=rank)
