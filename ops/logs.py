"""Reading the logs back: every process's records from the search store's daily log indices.

The records are the ECS documents the logs sink indexed (``sinks/logs.py``), read with one
search over ``{search_prefix}logs-*``; each comes back flat, with dotted names
(``log.level``, ``service.name``, ``shop.order_id``), oldest first. ``shopstream logs``
prints them; ``shopstream trace`` takes an order's lines from ``order_log_lines``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import elasticsearch
from elasticsearch import Elasticsearch

from ops.exceptions import OpsError
from topology.settings import Settings
from topology.stores import LOG_INDEX

#: ECS levels, lowest first (``log.level`` is the logging level's name in lower case).
LEVELS = ("debug", "info", "warning", "error", "critical")
#: Most records one search answers; the newest are kept when more match.
MAX_LINES = 10_000


class LogsError(OpsError):
    """The search store cannot be read, or the query is not one it can answer."""


class BadLevel(LogsError, ValueError):
    """A level that is not one of ``LEVELS``."""


def levels_from(level: str) -> list[str]:
    """The levels at ``level`` and above (``warn`` is ``warning``); BadLevel for another word."""
    name = {"warn": "warning", "fatal": "critical"}.get(level.lower(), level.lower())
    if name not in LEVELS:
        raise BadLevel(f"unknown level {level!r}: pick one of {', '.join(LEVELS)}")
    return list(LEVELS[LEVELS.index(name) :])


def flat(document: Mapping[str, Any], parent: str = "") -> dict[str, Any]:
    """An ECS document with its nested objects as dotted names."""
    out: dict[str, Any] = {}
    for key, value in document.items():
        name = f"{parent}.{key}" if parent else key
        if isinstance(value, Mapping):
            out.update(flat(value, name))
        else:
            out[name] = value
    return out


def query(
    *,
    order: str | None = None,
    service: str | None = None,
    level: str | None = None,
    since: datetime | None = None,
    correlation: str | None = None,
) -> dict[str, Any]:
    """The search's query: every filter given, all of them must hold.

    ``service`` is a ``service.name`` (``ingress``, ``orders``, ``sink-search``, ...) or its start
    before a ``-`` (``sink`` matches every sink).
    """
    filters: list[dict[str, Any]] = []
    if order:
        filters.append({"term": {"shop.order_id": order}})
    if correlation:
        filters.append({"term": {"labels.correlation_id": correlation}})
    if service:
        filters.append(
            {
                "bool": {
                    "should": [{"term": {"service.name": service}}, {"prefix": {"service.name": f"{service}-"}}],
                    "minimum_should_match": 1,
                }
            }
        )
    if level:
        filters.append({"terms": {"log.level": levels_from(level)}})
    if since is not None:
        filters.append({"range": {"@timestamp": {"gte": since.isoformat()}}})
    return {"bool": {"filter": filters}} if filters else {"match_all": {}}


def search_logs(
    es: Elasticsearch,
    prefix: str,
    *,
    order: str | None = None,
    service: str | None = None,
    level: str | None = None,
    since: datetime | None = None,
    correlation: str | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """The newest ``limit`` matching records, oldest first, each flat (dotted names).

    Raises:
        BadLevel: ``level`` is not a level.
        LogsError: the search store does not answer or refuses the search.

    """
    body = query(order=order, service=service, level=level, since=since, correlation=correlation)
    try:
        answer = es.search(
            index=LOG_INDEX.pattern(prefix),
            query=body,
            sort=[{"@timestamp": "desc"}],
            size=max(1, min(limit, MAX_LINES)),
            ignore_unavailable=True,
            allow_no_indices=True,
        )
    except elasticsearch.TransportError as err:
        raise LogsError(f"the search store at {es_address(es)} does not answer: {err}") from err
    except elasticsearch.ApiError as err:
        raise LogsError(f"the search store refused the search: {err}") from err
    hits = answer["hits"]["hits"]
    # Same-millisecond records keep their order of indexing (their ids are offsets of one partition).
    rows = [flat(hit["_source"]) for hit in reversed(hits)]
    rows.sort(key=lambda row: str(row.get("@timestamp", "")))
    return rows


def es_address(es: Elasticsearch) -> str:
    try:
        return str(es.transport.node_pool.get().base_url)
    except Exception:  # noqa: BLE001 - only for the message
        return "the configured address"


def order_log_lines(settings: Settings, order_id: str, since: datetime | None = None) -> list[dict[str, Any]]:
    """Every log record that names ``order_id`` (``shop.order_id``), oldest first, flat; for ``shopstream trace``.

    Raises:
        LogsError: the search store does not answer.

    """
    with Elasticsearch(settings.search_url, request_timeout=10, max_retries=0) as es:
        return search_logs(es, settings.search_prefix, order=order_id, since=since, limit=MAX_LINES)


#: What a printed line shows after its message, when the record has it.
SHOWN = (
    ("shop.order_id", "order"),
    ("labels.correlation_id", "correlation"),
    ("trace.id", "trace"),
    ("error.type", "error"),
)


def line(row: Mapping[str, Any]) -> str:
    """One record as a terminal line: ``time  LEVEL  service  logger: message  order=...``."""
    stamp = str(row.get("@timestamp", ""))
    try:
        when = datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    except ValueError:
        when = stamp
    level = str(row.get("log.level", "")).upper()
    message = str(row.get("message", "")).replace("\n", "\n    ")
    extra = "  ".join(f"{label}={row[key]}" for key, label in SHOWN if row.get(key))
    text = f"{when}  {level:<7}  {row.get('service.name', '-')}  {row.get('log.logger', '-')}: {message}"
    if extra:
        text += f"  {extra}"
    trace = row.get("error.stack_trace")
    if trace:
        text += "\n    " + str(trace).rstrip().replace("\n", "\n    ")
    return text
