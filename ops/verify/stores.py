"""Each store holds every entity's newest version from the event log.

A read model's row (a Redis hash, a search document, a Mongo document) carries the ``seq``
of the newest event applied to it as ``version``; the newest is the highest ``seq`` per
entity key on the event topic the read model follows (``Table.follows``). Names come from
``topology.stores``. A key the log no longer holds (past its retention) is not judged; a
cache key whose time to live has run out since the entity's newest event may be gone. A
sink still catching up shows as versions behind: ``shopstream topology lag`` tells which.
A store newer than the log is a breach only if the topic took no record since verify read it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import elasticsearch
import psycopg
import pymongo
import pymongo.errors
import redis as redis_lib
from confluent_kafka import KafkaException, TopicPartition
from elasticsearch import Elasticsearch
from psycopg import sql

from ops.kafka_admin import admin_client, end_offsets
from ops.verify.eventlog import EventLog
from ops.verify.exceptions import CannotVerify
from ops.verify.report import Check
from topology.settings import Settings
from topology.stores import (
    CACHES,
    INDEXES,
    NOTIFICATION_DOCS,
    NOTIFICATIONS,
    POSTGRES_TABLES,
    Key,
    Table,
    cache_ttl_s,
)
from topology.topics import Topic

VERSION = "version"
TIMEOUT_S = 5
CHUNK = 500


@dataclass(frozen=True)
class Newest:
    version: int
    type: str
    occurred_at: datetime


def _follows(table: Table) -> Topic:
    if table.follows is None:
        raise ValueError(f"{table.name} is filled by no event topic")
    return table.follows


def newest(log: EventLog, table: Table) -> dict[Key, Newest]:
    """The highest ``seq`` per entity key of ``table`` among the events on its topic that fill it (repeats counted)."""
    found: dict[Key, Newest] = {}
    topic = _follows(table)
    for entry in log.of(topic):
        if table.filled_by and not isinstance(entry.payload, table.filled_by):
            continue
        seq = entry.envelope.seq
        key = tuple(getattr(entry.payload, column, None) for column in table.key)
        if seq is None or None in key:
            continue
        seq = max(seq, log.repeat_seq.get((topic.name, entry.envelope.id), seq))
        if key not in found or seq > found[key].version:
            found[key] = Newest(seq, entry.envelope.type, entry.envelope.occurred_at)
    return found


class LogGrowth:
    """Whether a topic took records after verify read it (asked once per topic, and only when needed)."""

    def __init__(self, settings: Settings, log: EventLog) -> None:
        self.settings, self.log = settings, log
        self._grew: dict[str, bool] = {}

    def __call__(self, topic: Topic) -> bool:
        name = topic.name_for(self.settings.topic_prefix)
        if name not in self._grew:
            try:
                admin, meta = admin_client(self.settings)
                partitions = (
                    [TopicPartition(name, p) for p in meta.topics[name].partitions] if name in meta.topics else []
                )
                now = end_offsets(admin, partitions)
            except KafkaException as err:
                raise CannotVerify(f"Kafka at {self.settings.bootstrap_servers}: {err}") from None
            self._grew[name] = any(end > self.log.ends.get(key, 0) for key, end in now.items())
        return self._grew[name]


def compare(
    check: Check,
    where: Mapping[str, str],
    table: Table,
    expected: Mapping[Key, Newest],
    held: Mapping[Key, int],
    grew: Callable[[Topic], bool],
    may_be_gone: Callable[[Newest], bool] = lambda _: False,
) -> None:
    """A breach for each key of ``expected`` the store lacks, holds older or holds newer than the log."""
    for key, want in sorted(expected.items(), key=lambda kv: tuple(map(str, kv[0]))):
        check.checked += 1
        ids = {**where, **dict(zip(table.key, key, strict=True))}
        have = held.get(key)
        newest_is = f"the log's newest is version {want.version} ({want.type})"
        if have is None:
            if not may_be_gone(want):
                check.breach(f"missing; {newest_is}", **ids)
        elif have < want.version:
            check.breach(f"holds version {have}; {newest_is}", **ids)
        elif have > want.version and grew(_follows(table)):
            check.count("newer than the log read")
        elif have > want.version:
            check.breach(f"holds version {have}, newer than the log's newest ({want.version})", **ids)


def postgres(settings: Settings, log: EventLog, grew: LogGrowth, replica: bool) -> Check:
    """The versioned read-model tables, on the primary or the read replica."""
    url = settings.pg_read_url if replica else settings.pg_url
    server = "postgres-replica" if replica else "postgres"
    check = Check(f"store-{server}", f"PostgreSQL ({'replica' if replica else 'primary'}) holds each newest version")
    tables = [t for t in POSTGRES_TABLES if t.versioned and not t.append_only and t.follows is not None]
    schema = settings.pg_schema
    try:
        with psycopg.connect(url, connect_timeout=TIMEOUT_S, autocommit=True) as conn:
            _check_schema(conn, schema, tables)
            beyond = 0
            for table in tables:
                columns = sql.SQL(", ").join(map(sql.Identifier, (*table.key, VERSION)))
                query = sql.SQL("SELECT {} FROM {}.{}").format(
                    columns, sql.Identifier(schema), sql.Identifier(table.name)
                )
                held = {tuple(row[:-1]): _version(row[-1]) for row in conn.execute(query)}
                expected = newest(log, table)
                beyond += len(held.keys() - expected.keys())
                compare(check, {"table": table.name}, table, expected, held, grew)
    except psycopg.Error as err:
        raise CannotVerify(
            f"{server}: cannot read {_shown(url)}: {str(err).strip()}\n  fix: `shopstream stack up {server}`"
        ) from None
    check.notes["rows the log no longer holds"] = beyond
    return check


def _check_schema(conn: psycopg.Connection[Any], schema: str, tables: list[Table]) -> None:
    """Raise unless every table verify reads is there with its key and version columns."""
    rows = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s", (schema,)
    ).fetchall()
    present: dict[str, set[str]] = {}
    for table_name, column in rows:
        present.setdefault(table_name, set()).add(column)
    fix = "  fix: `shopstream db migrate` (or point SHOP_PG_SCHEMA at the migrated schema)"
    if not present:
        exists = conn.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (schema,)).fetchone()
        state = "has no tables" if exists else "does not exist"
        raise CannotVerify(f"postgres: schema {schema!r} {state}: the read models are not migrated\n{fix}")
    missing: list[str] = []
    for table in tables:
        if table.name not in present:
            missing.append(table.name)
            continue
        missing += [f"{table.name}.{c}" for c in (*table.key, VERSION) if c not in present[table.name]]
    if missing:
        raise CannotVerify(f"postgres: schema {schema!r} is half migrated: missing {', '.join(missing)}\n{fix}")


def redis(settings: Settings, log: EventLog, grew: LogGrowth, now: datetime) -> Check:
    check = Check("store-redis", "Redis holds each newest version (a cache key may expire after its time to live)")
    client = redis_lib.Redis.from_url(settings.redis_url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)
    try:
        client.ping()
        for kind in CACHES.values():
            expected = newest(log, kind.table)
            names = {
                key: kind.key_for(settings.redis_prefix, dict(zip(kind.table.key, key, strict=True)))
                for key in expected
            }
            held: dict[Key, int] = {}
            for chunk in _chunks(list(names.items())):
                pipe = client.pipeline(transaction=False)
                for _, name in chunk:
                    pipe.hget(name, VERSION)
                for (key, _), value in zip(chunk, pipe.execute(), strict=True):
                    if value is not None:
                        held[key] = _version(value)
            life_s = cache_ttl_s(kind, settings)
            life = timedelta(seconds=life_s) if life_s else None

            def gone(want: Newest, life: timedelta | None = life) -> bool:
                return life is not None and want.occurred_at + life <= now

            compare(check, {"cache": kind.name}, kind.table, expected, held, grew, gone)
    except redis_lib.RedisError as err:
        raise CannotVerify(
            f"redis: cannot read {_shown(settings.redis_url)}: {err}\n  fix: `shopstream stack up redis`"
        ) from None
    finally:
        client.close()
    return check


def search(settings: Settings, log: EventLog, grew: LogGrowth) -> Check:
    """Every index behind its alias; a document's id is its key's values joined by ``:``, as the sink writes it."""
    check = Check("store-search", "the search store holds each newest version")
    try:
        with Elasticsearch(settings.search_url, request_timeout=TIMEOUT_S * 2, max_retries=0) as es:
            for index in INDEXES.values():
                alias = index.alias(settings.search_prefix)
                expected = newest(log, index.table)
                ids = {":".join(map(str, key)): key for key in expected}
                held: dict[Key, int] = {}
                if es.indices.exists_alias(name=alias) and ids:
                    for chunk in _chunks(list(ids)):
                        for doc in es.mget(index=alias, ids=chunk, source_includes=[VERSION])["docs"]:
                            if doc.get("found"):
                                held[ids[doc["_id"]]] = _version(doc.get("_source", {}).get(VERSION))
                compare(check, {"index": alias}, index.table, expected, held, grew)
    except (elasticsearch.ApiError, elasticsearch.TransportError) as err:
        raise CannotVerify(
            f"search: cannot read {_shown(settings.search_url)}: {err}\n  fix: `shopstream stack up search`"
        ) from None
    return check


def mongo(settings: Settings, log: EventLog, grew: LogGrowth) -> Check:
    """The notifications collection: one document per notification, ``_id`` its id."""
    check = Check("store-mongo", "MongoDB holds each newest version")
    table = NOTIFICATION_DOCS.table or NOTIFICATIONS
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        settings.mongo_url, serverSelectionTimeoutMS=TIMEOUT_S * 1000, tz_aware=True
    )
    try:
        client.admin.command("ping")
        collection = client[settings.mongo_database][NOTIFICATION_DOCS.name]
        expected = newest(log, table)
        held: dict[Key, int] = {}
        for chunk in _chunks([key[0] for key in expected]):
            for doc in collection.find({"_id": {"$in": chunk}}, {VERSION: 1}):
                held[(doc["_id"],)] = _version(doc.get(VERSION))
        compare(check, {"collection": NOTIFICATION_DOCS.name}, table, expected, held, grew)
    except pymongo.errors.PyMongoError as err:
        raise CannotVerify(
            f"mongo: cannot read {_shown(settings.mongo_url)}: {err}\n  fix: `shopstream stack up mongo`"
        ) from None
    finally:
        client.close()
    return check


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _shown(url: str) -> str:
    """The URL with its password masked: messages reach terminals and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def _version(value: object) -> int:
    """A stored version as a number; one that is not a number counts as 0, older than any event."""
    try:
        return int(value) if isinstance(value, int | str | bytes) else 0
    except ValueError:
        return 0
