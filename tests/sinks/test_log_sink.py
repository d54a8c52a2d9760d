"""Logs end to end on the real stack: a process logs, Kafka carries it, the logs sink indexes it by day.

One scope and one logs sink process for the module: a child process logs through
``topology.logs`` as the orders flow would (its own principal, its ACLs), the record arrives
in ``{prefix}logs-YYYY.MM.DD``, ``shopstream logs --order`` finds it, a day past the retention
is deleted, a gunicorn worker's access log record arrives the same way, and a record that
is no log document is a dead letter with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from elasticsearch import Elasticsearch

from tests.support.processes import BIN, free_port, start_gunicorn, stop_all
from tests.support.sinks import SinkHarness
from topology.settings import Settings
from topology.stores import LOG_INDEX
from topology.topics import LOGS

pytestmark = pytest.mark.stack

#: A child that logs as the orders flow of a group would, then exits (logging.shutdown ships what is queued).
CHILD = """
import logging, sys
from topology.access import principal_of
from topology.logs import setup_logging
from topology.settings import Settings

setup_logging(Settings.from_env(), "orders-inventory", principal_of("flow", "orders"), {"flows.orders": "orders"})
order_id = sys.argv[1]
logging.getLogger("flows.orders.flow").warning(
    "order %s reserving -> cancelled: out of stock", order_id, extra={"shop.order_id": order_id}
)
logging.getLogger("flows.kafka_input").info("reading new topics: x")
"""


@pytest.fixture(scope="module")
def system(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SinkHarness]:
    harness = SinkHarness(settings, tmp_path_factory.mktemp("log-sink"), {"sink_commit_interval_s": 0.2})
    with Elasticsearch(settings.search_url, request_timeout=10) as es:
        es.indices.create(index=LOG_INDEX.for_day(harness.settings.search_prefix, datetime(2020, 1, 1, tzinfo=UTC)))
    try:
        harness.start("logs", SHOP_LOG_RETENTION_DAYS="3")
        yield harness
    finally:
        harness.close()


def env_of(harness: SinkHarness) -> dict[str, str]:
    return {**os.environ, **harness.settings.to_env()}


def wait_for_documents(es: Elasticsearch, index: str, order_id: str, timeout_s: float = 120) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if es.indices.exists(index=index):
            es.indices.refresh(index=index)
            hits = es.search(index=index, query={"term": {"shop.order_id": order_id}})["hits"]["hits"]
            if hits:
                return [hit["_source"] for hit in hits]
        time.sleep(0.2)
    raise AssertionError(f"no log record of {order_id} in {index} within {timeout_s}s")


def test_a_logged_line_reaches_its_daily_index_and_shopstream_logs_finds_it(system: SinkHarness) -> None:
    order_id = f"o_{uuid.uuid4().hex[:12]}"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, order_id], env=env_of(system), capture_output=True, text=True, timeout=60
    )
    assert child.returncode == 0, child.stderr
    assert f"WARNING flows.orders.flow: order {order_id}" in child.stderr, "the console line is for a person"
    assert not child.stderr.lstrip().startswith("{")
    prefix = system.settings.search_prefix
    today = LOG_INDEX.for_day(prefix, datetime.now(UTC))
    with Elasticsearch(system.settings.search_url, request_timeout=10) as es:
        (document,) = wait_for_documents(es, today, order_id)
        assert document["service"] == {"name": "orders"}
        assert document["log"]["level"] == "warning"
        assert document["log"]["logger"] == "flows.orders.flow"
        assert isinstance(document["process"]["pid"], int)
        # The day past the retention goes at the sink's first write (just after it); today's is kept.
        old = LOG_INDEX.for_day(prefix, datetime(2020, 1, 1, tzinfo=UTC))
        deadline = time.monotonic() + 30
        while es.indices.exists(index=old):
            assert time.monotonic() < deadline, f"{old} is past the retention and still there"
            time.sleep(0.2)
        assert es.indices.exists(index=today)
    found = subprocess.run(
        [str(BIN / "shopstream"), "logs", "--order", order_id, "--json"],
        env=env_of(system),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert found.returncode == 0, found.stderr
    (row,) = [json.loads(line) for line in found.stdout.splitlines()]
    assert row["shop.order_id"] == order_id
    assert row["message"] == f"order {order_id} reserving -> cancelled: out of stock"
    shown = subprocess.run(
        [str(BIN / "shopstream"), "logs", "--service", "orders", "--level", "warning", "--since", "10m"],
        env=env_of(system),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert f"WARNING  orders  flows.orders.flow: order {order_id}" in shown.stdout
    assert "reading new topics" not in shown.stdout, "INFO is below --level warning"


def test_a_record_that_is_no_log_document_is_a_dead_letter(system: SinkHarness) -> None:
    system.produce_raw(LOGS, "x", b"not a log line")
    system.flush()
    letters = system.dead_letters(LOGS)
    assert any(value == b"not a log line" and "not JSON" in letter.error for value, letter in letters)


def test_a_gunicorn_workers_access_log_is_shipped_with_the_route_and_the_order(
    system: SinkHarness, tmp_path: Path
) -> None:
    order_id = f"o_{uuid.uuid4().hex[:12]}"
    port = free_port()
    env = {**system.settings.to_env(), "SHOP_INGRESS_WORKERS": "2", "SHOP_INGRESS_METRICS_PORT": str(free_port())}
    process = start_gunicorn("ingress.wsgi:app_from_env()", env, port, tmp_path / "gunicorn.log")
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/v1/orders/{order_id}", headers={"User-Agent": "probe/1"})
        assert answer.status_code == 401
    finally:
        stop_all([process])
    today = LOG_INDEX.for_day(system.settings.search_prefix, datetime.now(UTC))
    with Elasticsearch(system.settings.search_url, request_timeout=10) as es:
        (document,) = wait_for_documents(es, today, order_id)
    assert document["service"]["name"] == "ingress"
    assert document["log"]["logger"] == "shop.access"
    assert document["url"]["path"] == "/v1/orders/{order_id}"
    assert document["http"]["response"]["status_code"] == 401
    assert document["user_agent"]["original"] == "probe/1"
    assert document["event"]["duration"] > 0
