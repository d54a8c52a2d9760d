"""Sinks as real processes on the real stack, in a scope of their own, and what they left in the stores.

A ``SinkHarness`` owns a ``Scope`` with the topology applied and the schema migrated, feeds
it events, starts and kills ``shopstream sink NAME`` processes and watches their groups'
offsets. The ``dump_*`` functions read one store back in a canonical order with the scope's
name taken out, so two scopes fed the same events compare equal byte for byte.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import psycopg
import pymongo
import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from elasticsearch import Elasticsearch
from psycopg import sql

from ops.kafka_admin import reader
from ops.topology_admin import lag
from tests.support.history import Event
from tests.support.processes import BIN, kill, spawn, stop_all
from tests.support.scope import Scope
from topology.access import OPERATOR
from topology.dlq import DeadLetter
from topology.envelope import encode
from topology.kafka_client import client_config
from topology.processes import PROCESSES, Process
from topology.settings import Settings
from topology.stores import AUDIT, INDEXES, PRODUCT_INDEX
from topology.topics import Topic

SINKS = ("postgres", "redis", "search", "mongo")
#: Sink settings over the defaults for tests: short checkpoints and retries (the benchmark keeps production's).
SINK_TUNING: Mapping[str, object] = {"sink_commit_interval_s": 0.2, "sink_retry_after_s": 1.0}


def sink_process(sink: str) -> Process:
    return next(p for p in PROCESSES if p.kind == "sink" and p.name == sink)


class SinkHarness:
    """Sink processes in a private scope: the topology applied, the schema migrated."""

    def __init__(self, base: Settings, logs: Path, tuning: Mapping[str, object] = SINK_TUNING) -> None:
        self.scope = Scope(base, overrides=tuning)
        self.settings = self.scope.settings
        self.logs = logs
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.scope.apply_topology()
        self.scope.migrate()
        self._producer = Producer({**client_config(self.settings, OPERATOR), "enable.idempotence": True})

    def produce(self, events: Iterable[Event]) -> int:
        count = 0
        for e in events:
            self.produce_raw(e.topic, e.key, encode(e.envelope))
            count += 1
        self.flush()
        return count

    def produce_raw(self, topic: Topic, key: str, value: bytes | None) -> None:
        while True:
            try:
                self._producer.produce(topic.name_for(self.settings.topic_prefix), value=value, key=key.encode())
                return
            except BufferError:
                self._producer.poll(0.1)

    def flush(self) -> None:
        assert self._producer.flush(30) == 0, "every record delivered"

    def start(self, sink: str, instance: str = "", **env: str) -> None:
        """Start a sink process; another ``instance`` of the same sink joins its consumer group."""
        self.processes[sink + instance] = spawn(
            [str(BIN / "shopstream"), "sink", sink],
            {**os.environ, **self.settings.to_env(), **env},
            self.logs / f"{self.scope.name}-{sink}{instance}.log",
        )

    def start_all(self, **env: str) -> None:
        """Start each of the four sinks."""
        for sink in SINKS:
            self.start(sink, **env)

    def kill(self, sink: str) -> None:
        kill(self.processes.pop(sink))

    def stop(self) -> None:
        stop_all(self.processes.values(), grace_s=15)
        self.processes.clear()

    def group(self, sink: str) -> str:
        return sink_process(sink).group_for(self.settings.topic_prefix) or ""

    def progress(self, sink: str) -> tuple[int, int]:
        """(records committed, records on the topics) for a sink's group."""
        rows = lag(self.settings, [self.group(sink)])
        return sum(r.committed or 0 for r in rows), sum(r.end for r in rows)

    def consumes(self, sink: str, events: Iterable[Event]) -> int:
        """How many of ``events`` travel on the topics the sink reads."""
        process = sink_process(sink)
        return sum(1 for e in events if e.topic in process.consumes)

    def wait_committed(self, sink: str, target: int, timeout_s: float = 600) -> None:
        """Poll the group's committed offsets (one request, every 10 ms) until they add up to ``target``."""
        process = sink_process(sink)
        watcher = Consumer({**client_config(self.settings, OPERATOR), "group.id": self.group(sink)})
        partitions = [
            TopicPartition(t.name_for(self.settings.topic_prefix), n)
            for t in process.consumes
            for n in range(t.partitions)
        ]
        deadline = time.monotonic() + timeout_s
        try:
            while sum(max(tp.offset, 0) for tp in watcher.committed(partitions, timeout=10)) < target:
                assert time.monotonic() < deadline, f"{sink} did not commit {target} records in {timeout_s}s"
                time.sleep(0.01)
        finally:
            watcher.close()

    def wait_caught_up(self, sinks: Iterable[str], timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        pending = set(sinks)
        while pending:
            for sink in list(pending):
                process = self.processes.get(sink)
                if process is not None and process.poll() is not None:
                    raise AssertionError(f"{sink} sink exited with {process.returncode}; see {self.logs}")
                committed, end = self.progress(sink)
                if committed == end:
                    pending.discard(sink)
            if pending and time.monotonic() > deadline:
                raise AssertionError(f"not caught up in {timeout_s}s: {sorted(pending)}; see {self.logs}")
            time.sleep(0.2)

    def dead_letters(self, topic: Topic) -> list[tuple[bytes | None, DeadLetter]]:
        consumer = reader(self.settings, **{"auto.offset.reset": "earliest"})
        consumer.subscribe([f"{topic.name_for(self.settings.topic_prefix)}.dlq"])
        found: list[tuple[bytes | None, DeadLetter]] = []
        idle_until = time.monotonic() + 5
        while time.monotonic() < idle_until:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            found.append((msg.value(), DeadLetter.from_headers(msg.headers())))
            idle_until = time.monotonic() + 2
        consumer.close()
        return found

    def close(self) -> None:
        self.stop()
        self._producer.flush(10)
        self.scope.close()


def _anonymous(scope: Scope, text: str) -> str:
    return text.replace(scope.name, "<scope>")


def dump_postgres(scope: Scope) -> str:
    """Every row of every read-model table, by table and key."""
    lines = []
    with psycopg.connect(scope.settings.pg_url) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
            " AND table_name NOT LIKE '%%yoyo%%' ORDER BY 1",
            (scope.schema,),
        ).fetchall()
        for (table,) in tables:
            rows = conn.execute(
                sql.SQL("SELECT * FROM {}.{} ORDER BY 1, 2").format(sql.Identifier(scope.schema), sql.Identifier(table))
            ).fetchall()
            lines += [f"{table}: {row!r}" for row in rows]
    return _anonymous(scope, "\n".join(lines))


def dump_redis(scope: Scope) -> str:
    """Every hash under the scope's key prefix, by key and field."""
    client = redis.Redis.from_url(scope.settings.redis_url, decode_responses=True)
    keys = sorted(client.scan_iter(match=f"{scope.key_prefix}*", count=1000))
    text = "\n".join(f"{k}: {sorted(client.hgetall(k).items())}" for k in keys)
    client.close()
    return _anonymous(scope, text)


def dump_search(scope: Scope) -> str:
    """Every document behind each alias, with its version, by alias and id."""
    with Elasticsearch(scope.settings.search_url, request_timeout=30) as es:
        lines = []
        for alias, search_index in INDEXES.items():
            name = search_index.alias(scope.index_prefix)
            if not es.indices.exists_alias(name=name):
                continue
            es.indices.refresh(index=name)
            hits = es.search(index=name, size=10_000, version=True)
            # A product's document is written under optimistic concurrency: its ``_version`` counts writes,
            # not events; the versions of its two parts are in the document (``version``, ``stock_version``).
            counted = search_index is PRODUCT_INDEX
            docs = sorted(
                (h["_id"], None if counted else h["_version"], json.dumps(h["_source"], sort_keys=True))
                for h in hits["hits"]["hits"]
            )
            lines += [f"{alias}: {d!r}" for d in docs]
        return _anonymous(scope, "\n".join(lines))


def dump_mongo(scope: Scope) -> str:
    """Every document of every collection in the scope's database, by collection and id.

    The audit log's entries are listed one by one, by id, whichever bucket holds each: how a
    checkpoint's events were grouped into documents is not part of what the log says.
    """
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(scope.settings.mongo_url)
    db = client[scope.mongo_database]
    lines = []
    for c in sorted(db.list_collection_names()):
        if c == AUDIT.name:
            entries = [e for bucket in db[c].find() for e in bucket["events"]]  # type: ignore[attr-defined]
            lines += [f"{c}: {e!r}" for e in sorted(entries, key=lambda e: e["id"])]
        else:
            lines += [f"{c}: {doc!r}" for doc in db[c].find().sort("_id", 1)]
    client.close()
    return _anonymous(scope, "\n".join(lines))
