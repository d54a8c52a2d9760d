"""Operating the sinks: reindex behind an alias, migrations, the sink command, metrics."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from elasticsearch import Elasticsearch

from ops.db import status
from tests.support.history import history
from tests.support.processes import BIN, free_port
from tests.support.sinks import SinkHarness, dump_search
from topology.settings import Settings

pytestmark = pytest.mark.stack
EVENTS = history(seed=5, orders=20, skus=6, users=4)


@pytest.fixture
def sinks(settings: Settings, tmp_path: Path) -> Iterator[SinkHarness]:
    harness = SinkHarness(settings, tmp_path)
    yield harness
    harness.close()


def shopstream(sinks: SinkHarness, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **sinks.settings.to_env()}
    return subprocess.run([str(BIN / "shopstream"), *args], env=env, capture_output=True, text=True, timeout=120)


def test_reindex_swaps_the_alias_and_keeps_every_document(sinks: SinkHarness) -> None:
    sinks.produce(EVENTS)
    sinks.start("search")
    sinks.wait_caught_up(["search"])
    before = dump_search(sinks.scope)
    answer = shopstream(sinks, "search-reindex", "products")
    assert answer.returncode == 0, answer.stderr
    assert "products-v1 -> " in answer.stdout and "products-v2" in answer.stdout
    with Elasticsearch(sinks.settings.search_url) as es:
        alias = f"{sinks.settings.search_prefix}products"
        assert list(es.indices.get_alias(name=alias)) == [f"{alias}-v2"]
        assert not es.indices.exists(index=f"{alias}-v1"), "the old index is gone unless --keep-old"
    assert dump_search(sinks.scope) == before, "same documents, same versions"
    later = history(seed=6, orders=3, skus=8, users=1, tag="later")  # the running sink writes through the alias
    sinks.produce(later)
    sinks.wait_caught_up(["search"])
    assert dump_search(sinks.scope).count("products:") > before.count("products:")


def test_migrations_are_idempotent_and_listed(sinks: SinkHarness) -> None:
    again = shopstream(sinks, "db", "migrate")
    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stdout
    assert [(m.id, m.applied) for m in status(sinks.settings)] == [
        ("0001_read_models", True),
        ("0002_credentials", True),
        ("0003_payment_customers", True),
        ("0004_user_account", True),
    ]
    listed = shopstream(sinks, "db", "status", "--json")
    assert '"applied": true' in listed.stdout


def test_unknown_names_are_usage_errors(sinks: SinkHarness) -> None:
    assert shopstream(sinks, "sink", "nosuch").returncode == 2
    assert shopstream(sinks, "search-reindex", "nosuch").returncode == 2


def test_a_sink_serves_its_metrics(sinks: SinkHarness) -> None:
    port = free_port()
    sinks.produce(EVENTS)
    sinks.start("postgres", SHOP_METRICS_PORT=str(port))
    sinks.wait_caught_up(["postgres"])
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
