"""The logs sink: every process's log records from ``shop.logs`` into the search store's daily indices.

Each record is one ECS JSON document (``topology/logs.py``); it goes to
``{search_prefix}logs-YYYY.MM.DD``, the UTC day of its ``@timestamp``, under the id
``TOPIC-PARTITION-OFFSET``, so a batch read again after a crash or a backpressure pause
writes the same documents again and adds none. The indices are made from one index
template (``topology/stores/logs.py``), written at the first batch. A record that is not a
JSON object with a ``@timestamp`` goes to ``shop.logs.dlq`` with the reason.

Retention: at the first batch and then hourly, the days older than
``SHOP_LOG_RETENTION_DAYS`` are deleted (whole indices, no delete-by-query; the same on
any Elasticsearch-API server, no ILM needed).

The sink logs nothing per batch: what it logs comes back to it through ``shop.logs``.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import elasticsearch
from elasticsearch import Elasticsearch
from quixstreams.sinks import SinkBatch
from quixstreams.sinks.base.item import SinkItem

from sinks.base import EventSink, Record, Rejected
from sinks.exceptions import SinkError, StoreUnavailable
from sinks.search import RETRY_STATUS, TRANSIENT
from topology.stores import LOG_INDEX

log = logging.getLogger(__name__)
SWEEP_EVERY_S = 3600.0


def nested(document: dict[str, Any]) -> dict[str, Any]:
    """The document with dotted keys (``log.level``, ``ecs.version``) nested as objects; ``@timestamp`` stays."""
    out: dict[str, Any] = {}
    for key, value in document.items():
        target = out
        *parents, leaf = key.split(".") if key != "@timestamp" else [key]
        for part in parents:
            found = target.get(part)
            if not isinstance(found, dict):
                found = target[part] = {}
            target = found
        if isinstance(value, dict) and isinstance(target.get(leaf), dict):
            target[leaf] = {**target[leaf], **nested(value)}
        else:
            target[leaf] = nested(value) if isinstance(value, dict) else value
    return out


def parse(value: bytes | None) -> tuple[dict[str, Any], date]:
    """The record's document and its UTC day; ValueError says why a record is not a log document."""
    if not value:
        raise ValueError("an empty record is no log document")
    try:
        document = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"not JSON: {err}") from None
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    stamp = document.get("@timestamp")
    if not isinstance(stamp, str):
        raise ValueError("no @timestamp")
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        raise ValueError(f"@timestamp {stamp[:40]!r} is no ISO 8601 time") from None
    if when.tzinfo is None:
        raise ValueError(f"@timestamp {stamp[:40]!r} has no time zone")
    return nested(document), when.astimezone(UTC).date()


def ensure_template(es: Elasticsearch, prefix: str) -> None:
    es.indices.put_index_template(
        name=LOG_INDEX.template(prefix),
        index_patterns=[LOG_INDEX.pattern(prefix)],
        template=LOG_INDEX.body,
        priority=200,
    )


def expired(es: Elasticsearch, prefix: str, retention_days: int, today: date) -> list[str]:
    """The daily log indices older than the retention (``today`` and the days before it are kept)."""
    oldest_kept = today - timedelta(days=retention_days - 1)
    names = es.indices.get(index=LOG_INDEX.pattern(prefix), ignore_unavailable=True, allow_no_indices=True)
    days = {name: LOG_INDEX.day_of(prefix, name) for name in names}
    return sorted(name for name, day in days.items() if day is not None and day < oldest_kept)


def sweep(es: Elasticsearch, prefix: str, retention_days: int, today: date) -> list[str]:
    """Delete the expired daily log indices; their names."""
    gone = expired(es, prefix, retention_days, today)
    for name in gone:
        es.indices.delete(index=name, ignore_unavailable=True)
    return gone


class LogSink(EventSink):
    name = "logs"

    def connect(self) -> None:
        self._es = Elasticsearch(self.settings.search_url, request_timeout=30, max_retries=0)
        self._ready = False
        self._next_sweep = 0.0

    def close(self) -> None:
        self._es.close()

    def store(self, records: list[Record]) -> tuple[int, list[Rejected]]:
        raise SinkError("the logs sink reads log documents, not envelopes: write_all indexes them")

    def write_all(self, batches: list[SinkBatch]) -> None:
        started = time.perf_counter()
        prefix = self.settings.search_prefix
        operations: list[dict[str, Any]] = []
        sources: list[tuple[list[Rejected], SinkItem]] = []  # each document's record, and where a refusal goes
        rejected: dict[tuple[str, int], list[Rejected]] = {}
        for batch in batches:
            refused = rejected.setdefault((batch.topic, batch.partition), [])
            for item in batch:
                try:
                    document, day = parse(item.value)
                except ValueError as err:
                    refused.append(Rejected(item, str(err)))
                    continue
                target = LOG_INDEX.for_day(prefix, day)
                operations += [
                    {"index": {"_index": target, "_id": f"{batch.topic}-{batch.partition}-{item.offset}"}},
                    document,
                ]
                sources.append((refused, item))
        try:
            refusals = self._index(operations)
            self._sweep_if_due()
        except StoreUnavailable as err:
            raise self.backpressure(err) from err
        for position, reason in refusals:
            refused, item = sources[position]
            refused.append(Rejected(item, reason))
        self.settle(rejected, started, len(sources) - len(refusals))

    def _index(self, operations: list[dict[str, Any]]) -> list[tuple[int, str]]:
        """Index the documents; (position, reason) of each one the store refuses for good (a dead letter)."""
        if not operations:
            return []
        try:
            if not self._ready:
                ensure_template(self._es, self.settings.search_prefix)
                self._ready = True
            answer = self._es.bulk(operations=operations)
        except TRANSIENT as err:
            raise StoreUnavailable(f"search: {err}") from err
        except elasticsearch.ApiError as err:
            if err.status_code in RETRY_STATUS:
                raise StoreUnavailable(f"search: {err}") from err
            raise
        refusals: list[tuple[int, str]] = []
        for position, item in enumerate(answer["items"]):
            result = item["index"]
            status = result.get("status", 200)
            if status in RETRY_STATUS:
                raise StoreUnavailable(f"search: {result.get('error')}")
            if status >= 300:
                refusals.append((position, f"search refused {result.get('_index')}: {result.get('error')}"[:1000]))
        return refusals

    def _sweep_if_due(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_EVERY_S
        try:
            sweep(self._es, self.settings.search_prefix, self.settings.log_retention_days, datetime.now(UTC).date())
        except TRANSIENT as err:
            raise StoreUnavailable(f"search: {err}") from err
