"""Read routing against the real primary and streaming replica."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from ingress.readmodel import ReadModel
from ingress.replica_lag import ReplicaLag
from tests.support.scope import Scope
from topology.settings import Settings

pytestmark = pytest.mark.stack
ORDER = "SELECT order_id, status, version FROM orders WHERE order_id = %s"


@pytest.fixture
def private(ns: Scope) -> Settings:
    """The scope's settings with the read models migrated (removed with the scope)."""
    ns.migrate()
    return ns.settings.model_copy(update={"replica_wait_ms": 2000})


@pytest.fixture
def reads(private: Settings) -> Iterator[ReadModel]:
    model = ReadModel(private)
    yield model
    model.close()


@pytest.fixture
def paused_replica(settings: Settings, private: Settings) -> Iterator[None]:
    """The replica, caught up with the primary (the test's schema is there), stops replaying WAL until the test ends."""
    with psycopg.connect(settings.pg_url, autocommit=True) as primary:
        position = primary.execute("SELECT pg_current_wal_lsn()").fetchone()
    with psycopg.connect(settings.pg_read_url, autocommit=True) as conn:
        deadline = time.monotonic() + 10
        while not conn.execute("SELECT pg_last_wal_replay_lsn() >= %s", position).fetchone()[0]:  # type: ignore[index]
            assert time.monotonic() < deadline, "the replica caught up before the pause"
            time.sleep(0.01)
        conn.execute("SELECT pg_wal_replay_pause()")
        try:
            yield
        finally:
            conn.execute("SELECT pg_wal_replay_resume()")


def write_order(settings: Settings, order_id: str, status: str, version: int) -> None:
    with psycopg.connect(settings.pg_url, autocommit=True, options=f"-c search_path={settings.pg_schema}") as conn:
        conn.execute(
            "INSERT INTO orders (order_id, status, updated_at, version) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (order_id) DO UPDATE SET status = EXCLUDED.status, version = EXCLUDED.version",
            (order_id, status, datetime.now(UTC), version),
        )


def gauges(collector: ReplicaLag) -> dict[str, float]:
    return {sample.name: sample.value for family in collector.collect() for sample in family.samples}


def test_queries_read_the_replica_and_fresh_reads_see_their_write(private: Settings, reads: ReadModel) -> None:
    write_order(private, "o1", "placed", 1)
    answer = reads.fetch(ORDER, ("o1",), fresh=True)
    assert answer.rows == [{"order_id": "o1", "status": "placed", "version": 1}]
    assert answer.source == "replica", "a replica that keeps up answers fresh reads too"
    assert reads.fetch("SELECT pg_is_in_recovery() AS replica").rows == [{"replica": True}]


def test_a_fresh_read_falls_back_to_the_primary_when_the_replica_lags(
    private: Settings, reads: ReadModel, paused_replica: None
) -> None:
    write_order(private, "o2", "confirmed", 2)
    stale = reads.fetch(ORDER, ("o2",))
    assert stale == type(stale)([], "replica"), "the paused replica has not replayed the write"
    fresh = reads.fetch(ORDER, ("o2",), fresh=True)
    assert fresh.source == "primary"
    assert fresh.rows == [{"order_id": "o2", "status": "confirmed", "version": 2}]
    lag = reads.replica_lag()
    assert lag.bytes > 0
    sampled = gauges(ReplicaLag(private, max_age_s=0))
    assert sampled["shop_read_replica_up"] == 1
    assert sampled["shop_read_replica_lag_bytes"] >= lag.bytes, "a scrape samples the lag itself"


def test_lag_returns_to_zero_once_the_replica_replays(private: Settings, reads: ReadModel) -> None:
    write_order(private, "o3", "placed", 1)
    deadline = time.monotonic() + 10
    while not reads.fetch(ORDER, ("o3",)).rows:  # the replica has received and replayed the write
        assert time.monotonic() < deadline, "the replica replayed the write within 10 s"
        time.sleep(0.05)
    while reads.replica_lag().bytes > 0:
        assert time.monotonic() < deadline, "the replica's lag went back to zero within 10 s"
        time.sleep(0.05)
    assert gauges(ReplicaLag(private, max_age_s=0))["shop_read_replica_lag_bytes"] == 0
