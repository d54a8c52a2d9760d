"""The PostgreSQL schema of the read models, managed by yoyo-migrations.

Migrations are SQL files under ``topology/stores/migrations`` (the sinks write the read
models, the ingress reads them and owns the credentials tables). ``shopstream db migrate``
applies what is missing, under yoyo's lock, into the schema ``SHOP_PG_SCHEMA`` (created if
absent); ``make run`` and the test fixtures call it. The replica follows by streaming replication.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from yoyo import get_backend, read_migrations
from yoyo.backends.base import DatabaseBackend

from ops.exceptions import OpsError
from topology.settings import Settings
from topology.stores import MIGRATIONS


@dataclass(frozen=True)
class MigrationState:
    id: str
    applied: bool


def yoyo_url(settings: Settings) -> str:
    """The primary's URL in yoyo's form (psycopg 3 driver, schema as a parameter)."""
    parts = urlsplit(settings.pg_url)
    query = "&".join(q for q in (parts.query, f"schema={settings.pg_schema}") if q)
    return urlunsplit(("postgresql+psycopg", parts.netloc, parts.path, query, ""))


def _backend(settings: Settings) -> DatabaseBackend:
    try:
        with psycopg.connect(settings.pg_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(settings.pg_schema)))
        return get_backend(yoyo_url(settings))
    except psycopg.OperationalError as err:
        raise OpsError(
            f"postgres: cannot reach {settings.pg_url}: {str(err).strip()}\n  fix: `shopstream stack up postgres`"
        ) from err


def migrate(settings: Settings) -> list[str]:
    """Apply the migrations not applied yet; the ids applied now (empty when up to date)."""
    backend = _backend(settings)
    migrations = read_migrations(str(MIGRATIONS))
    with backend.lock():
        todo = backend.to_apply(migrations)
        backend.apply_migrations(todo)
    return [m.id for m in todo]


def status(settings: Settings) -> list[MigrationState]:
    backend = _backend(settings)
    migrations = read_migrations(str(MIGRATIONS))
    return [MigrationState(m.id, backend.is_applied(m)) for m in migrations]
