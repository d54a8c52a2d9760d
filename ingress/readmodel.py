"""Reads of the PostgreSQL read models: the replica by default, the primary when it must be fresh.

Query paths read the streaming replica. A read that must see everything committed
before it started (a client reading its own write) asks for ``fresh=True``: it takes the
primary's current WAL position, waits up to ``SHOP_REPLICA_WAIT_MS`` for the replica to
replay that far, and reads the primary if it does not. ``replica_lag`` measures how far
behind the replica is; the Prometheus gauges of it are sampled on scrape (``ingress/replica_lag.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from prometheus_client import Counter
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from ingress.exceptions import ReadModelUnavailable
from topology.settings import Settings

Source = Literal["replica", "primary"]
Query = str | sql.SQL | sql.Composed
READS = Counter("shop_read_model_reads_total", "Read-model reads by where they were answered", ["source", "fresh"])
FAILURES = (psycopg.OperationalError, PoolTimeout)


@dataclass(frozen=True)
class Answer:
    rows: list[dict[str, Any]]
    source: Source


@dataclass(frozen=True)
class Lag:
    bytes: int
    seconds: float


class ReadModel:
    """Connection pools to the replica and the primary, with the routing rule above."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        options = {"options": f"-c search_path={settings.pg_schema}", "connect_timeout": 3, "autocommit": True}
        self.replica = ConnectionPool(
            settings.pg_read_url, min_size=1, max_size=4, kwargs=options, timeout=5, open=True, name="replica"
        )
        self.primary = ConnectionPool(
            settings.pg_url, min_size=1, max_size=2, kwargs=options, timeout=5, open=True, name="primary"
        )

    def close(self) -> None:
        self.replica.close()
        self.primary.close()

    def fetch(self, query: Query, params: tuple[Any, ...] = (), *, fresh: bool = False) -> Answer:
        """Rows of ``query``; with ``fresh``, never older than what the primary had committed when called."""
        source: Source = "replica"
        if fresh and not self._replica_reaches(self._primary_position()):
            source = "primary"
        try:
            rows = self._run(source, query, params)
        except FAILURES as err:
            if source == "primary":
                raise ReadModelUnavailable(f"read model: {err}") from err
            try:  # the replica is away: the primary answers
                source, rows = "primary", self._run("primary", query, params)
            except FAILURES as again:
                raise ReadModelUnavailable(f"read model: replica and primary unavailable: {again}") from again
        READS.labels(source, str(fresh).lower()).inc()
        return Answer(rows, source)

    def _run(self, source: Source, query: Query, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        pool = self.replica if source == "replica" else self.primary
        with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(query, params).fetchall()

    def _primary_position(self) -> str | None:
        try:
            with self.primary.connection() as conn:
                row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        except FAILURES:
            return None
        return str(row[0]) if row else None

    def _replica_reaches(self, position: str | None) -> bool:
        if position is None:
            return True  # the primary is gone: the replica is the freshest copy there is
        deadline = time.monotonic() + self.settings.replica_wait_ms / 1000
        try:
            with self.replica.connection() as conn:
                while True:
                    row = conn.execute(
                        "SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), %s::pg_lsn) >= 0", (position,)
                    ).fetchone()
                    if row and row[0]:
                        return True
                    if time.monotonic() >= deadline:
                        return False
                    time.sleep(0.005)
        except FAILURES:
            return False

    def replica_lag(self) -> Lag:
        """How far the replica is behind (as the replica sees it)."""
        with self.replica.connection() as conn:
            return measure_lag(conn)


def measure_lag(conn: psycopg.Connection[Any]) -> Lag:
    """The lag of the replica ``conn`` is connected to: WAL received but not replayed, and its age."""
    row = conn.execute(
        "SELECT COALESCE(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0),"
        " CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
        " ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END"
    ).fetchone()
    return Lag(int(row[0]), float(row[1])) if row else Lag(0, 0.0)
