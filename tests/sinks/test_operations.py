"""Operating the sinks: reindex behind an alias, migrations, the sink command, metrics."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from elasticsearch import Elasticsearch

from ops.db import status
from tests.conftest import free_port
from tests.sinks.harness import Scope, history
from topology.settings import Settings

pytestmark = pytest.mark.stack
BIN = Path(sys.executable).parent
EVENTS = history(seed=5, orders=20, skus=6, users=4)


@pytest.fixture
def scope(settings: Settings, tmp_path: Path) -> Iterator[Scope]:
    scope = Scope(settings, tmp_path)
    yield scope
    scope.close()


def shopstream(scope: Scope, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **scope.settings.to_env()}
    return subprocess.run([str(BIN / "shopstream"), *args], env=env, capture_output=True, text=True, timeout=120)


def test_reindex_swaps_the_alias_and_keeps_every_document(scope: Scope) -> None:
    scope.produce(EVENTS)
    scope.start("search")
    scope.wait_caught_up(["search"])
    before = scope.dump("search")
    answer = shopstream(scope, "search-reindex", "products")
    assert answer.returncode == 0, answer.stderr
    assert "products-v1 -> " in answer.stdout and "products-v2" in answer.stdout
    with Elasticsearch(scope.settings.search_url) as es:
        alias = f"{scope.settings.search_prefix}products"
        assert list(es.indices.get_alias(name=alias)) == [f"{alias}-v2"]
        assert not es.indices.exists(index=f"{alias}-v1"), "the old index is gone unless --keep-old"
    assert scope.dump("search") == before, "same documents, same versions"
    later = history(seed=6, orders=3, skus=8, users=1, tag="later")  # the running sink writes through the alias
    scope.produce(later)
    scope.wait_caught_up(["search"])
    assert scope.dump("search").count("products:") > before.count("products:")


def test_migrations_are_idempotent_and_listed(scope: Scope) -> None:
    again = shopstream(scope, "db", "migrate")
    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stdout
    assert [(m.id, m.applied) for m in status(scope.settings)] == [
        ("0001_read_models", True),
        ("0002_credentials", True),
    ]
    listed = shopstream(scope, "db", "status", "--json")
    assert '"applied": true' in listed.stdout


def test_unknown_names_are_usage_errors(scope: Scope) -> None:
    assert shopstream(scope, "sink", "nosuch").returncode == 2
    assert shopstream(scope, "search-reindex", "nosuch").returncode == 2


def test_a_sink_serves_its_metrics(scope: Scope) -> None:
    port = free_port()
    scope.produce(EVENTS)
    scope.start("postgres", SHOP_METRICS_PORT=str(port))
    scope.wait_caught_up(["postgres"])
    deadline = time.monotonic() + 10
    while True:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    written = [
        line
        for line in text.splitlines()
        if line.startswith('shop_sink_events_total{outcome="written",sink="postgres"}')
    ]
    assert written and float(written[0].split()[-1]) > 0, [line for line in text.splitlines() if "shop_" in line]
    assert "shop_pg_replica_lag_bytes" in text
