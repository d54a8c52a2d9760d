"""PostgreSQL: a primary and a streaming read replica that refuses writes."""

from __future__ import annotations

import time

import psycopg
import pytest
from psycopg import sql

from tests.support.scope import Scope
from topology.settings import Settings

pytestmark = pytest.mark.stack


def test_write_on_primary_is_visible_on_replica(settings: Settings, ns: Scope, pg: psycopg.Connection) -> None:
    pg.execute("create table items (id int primary key, name text not null)")
    pg.execute("insert into items values (1, 'kettle'), (2, 'teapot')")
    deadline = time.monotonic() + 10
    rows: list[tuple[object, ...]] = []
    with psycopg.connect(settings.pg_read_url, autocommit=True) as replica:
        assert replica.execute("select pg_is_in_recovery()").fetchone() == (True,)
        while time.monotonic() < deadline:
            try:
                query = sql.SQL("select id, name from {}.items order by id").format(sql.Identifier(ns.schema))
                rows = replica.execute(query).fetchall()
            except psycopg.errors.UndefinedTable:
                rows = []
            if len(rows) == 2:
                break
            time.sleep(0.1)
    assert rows == [(1, "kettle"), (2, "teapot")]


def test_replica_refuses_writes(settings: Settings, pg: psycopg.Connection) -> None:
    with (
        psycopg.connect(settings.pg_read_url, autocommit=True) as replica,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        replica.execute("create table nope (id int)")


def test_primary_reports_a_streaming_replica(pg: psycopg.Connection) -> None:
    states = [row[0] for row in pg.execute("select state from pg_stat_replication").fetchall()]
    assert "streaming" in states


def test_upsert_guarded_by_version(pg: psycopg.Connection) -> None:
    pg.execute("create table stock (sku text primary key, qty int not null, version bigint not null)")
    upsert = (
        "insert into stock values (%s, %s, %s) on conflict (sku) do update "
        "set qty = excluded.qty, version = excluded.version where stock.version < excluded.version"
    )
    pg.execute(upsert, ("sku-1", 5, 2))
    pg.execute(upsert, ("sku-1", 9, 1))  # older event: changes nothing
    pg.execute(upsert, ("sku-1", 5, 2))  # repeated event: changes nothing
    assert pg.execute("select qty, version from stock").fetchall() == [(5, 2)]
