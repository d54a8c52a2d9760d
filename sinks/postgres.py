"""The PostgreSQL sink: read-model rows upserted by key, guarded by version, one transaction per batch."""

from __future__ import annotations

import time
from functools import cache
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from sinks import metrics
from sinks.base import EventSink, Record, Rejected, project_each
from sinks.exceptions import StoreUnavailable
from sinks.projections import by_table, read_model_rows
from topology.stores import Row, Table

TRANSIENT = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)
LAG_EVERY_S = 5.0


def stage(table: Table) -> sql.Identifier:
    return sql.Identifier(f"stage_{table.name}")


@cache
def upsert(table: Table) -> sql.Composed:
    """INSERT ... SELECT from the table's staging copy, ON CONFLICT by key.

    Append-only rows keep the first; entity rows merge by version. The SET clause is
    ``projections.merge`` in SQL: each column from the newer row when it provides one, else
    kept; the version is the larger.
    """
    columns = sql.SQL(", ").join(map(sql.Identifier, table.all_columns))
    insert = sql.SQL("INSERT INTO {} AS t ({}) SELECT {} FROM {} ON CONFLICT ({}) ").format(
        sql.Identifier(table.name), columns, columns, stage(table), sql.SQL(", ").join(map(sql.Identifier, table.key))
    )
    if table.append_only:
        return insert + sql.SQL("DO NOTHING")
    newer = sql.SQL(
        "CASE WHEN EXCLUDED.version > t.version"
        " THEN COALESCE(EXCLUDED.{c}, t.{c}) ELSE COALESCE(t.{c}, EXCLUDED.{c}) END"
    )
    sets: list[sql.Composable] = [
        sql.SQL("{} = ").format(sql.Identifier(c)) + newer.format(c=sql.Identifier(c)) for c in table.columns
    ]
    sets.append(sql.SQL("version = GREATEST(t.version, EXCLUDED.version)"))
    return insert + sql.SQL("DO UPDATE SET ") + sql.SQL(", ").join(sets)


def write_rows(conn: psycopg.Connection[Any], rows: list[tuple[Table, Row]]) -> None:
    """Rows folded per table and key, copied into a staging table, then upserted from it in one statement.

    The caller holds the transaction; staging tables are temporary, per connection, emptied at commit.
    """
    with conn.cursor() as cur:
        for table, folded in by_table(rows):
            cur.execute(
                sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS").format(
                    stage(table), sql.Identifier(table.name)
                )
            )
            columns = sql.SQL(", ").join(map(sql.Identifier, table.all_columns))
            with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(stage(table), columns)) as copy:
                for row in folded.values():
                    copy.write_row(table.values_of(row))
            cur.execute(upsert(table))


class PostgresSink(EventSink):
    name = "postgres"

    def connect(self) -> None:
        self._pool = ConnectionPool(
            self.settings.pg_url,
            min_size=1,
            max_size=2,
            kwargs={"options": f"-c search_path={self.settings.pg_schema}", "connect_timeout": 5},
            check=ConnectionPool.check_connection,
            timeout=5,
            open=True,
            name=f"sink-{self.name}",
        )
        self._lag_at = 0.0

    def close(self) -> None:
        self._pool.close()

    def store(self, records: list[Record]) -> tuple[int, list[Rejected]]:
        projected, rejected = project_each(records, read_model_rows)
        projected = [(r, rows) for r, rows in projected if rows]
        try:
            with self._pool.connection() as conn:
                try:
                    with conn.transaction():
                        write_rows(conn, [row for _, rows in projected for row in rows])
                except TRANSIENT:
                    raise
                except psycopg.Error:
                    # Some record breaks a constraint or a type: write them one by one to find it.
                    kept: list[tuple[Record, list[tuple[Table, Row]]]] = []
                    for record, rows in projected:
                        try:
                            with conn.transaction():
                                write_rows(conn, rows)
                            kept.append((record, rows))
                        except TRANSIENT:
                            raise
                        except psycopg.Error as err:
                            rejected.append(Rejected(record.item, f"postgres refused it: {str(err).strip()}"))
                    projected = kept
                self._export_lag(conn)
        except TRANSIENT as err:
            raise StoreUnavailable(f"postgres: {str(err).strip() or type(err).__name__}") from err
        return len(projected), rejected

    def _export_lag(self, conn: psycopg.Connection[Any]) -> None:
        """The replicas' lag as the primary sees it, every few seconds."""
        if time.monotonic() - self._lag_at < LAG_EVERY_S:
            return
        self._lag_at = time.monotonic()
        rows = conn.execute(
            "SELECT application_name, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn),"
            " COALESCE(EXTRACT(EPOCH FROM replay_lag), 0) FROM pg_stat_replication"
        ).fetchall()
        conn.commit()
        for name, lag_bytes, lag_seconds in rows:
            metrics.REPLICA_LAG_BYTES.labels(name).set(float(lag_bytes or 0))
            metrics.REPLICA_LAG_SECONDS.labels(name).set(float(lag_seconds or 0))
