"""The Elasticsearch sink: products for search, orders for support, through bulk calls.

Each index (``topology.stores.INDEXES``) is versioned behind an alias whose
versions take their mappings from an index template; ``reindex`` builds
``-vN+1`` from the template, copies, swaps the alias atomically and copies again (so
writes that landed meanwhile are kept). Documents carry the entity version as their
external version (``external_gte``), so an older or repeated event changes nothing.
Orders gather several events, so the sink reads the stored document and merges.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import elasticsearch
from elasticsearch import Elasticsearch

from sinks.base import EventSink, Record, Rejected, project_each
from sinks.exceptions import SinkError, StoreUnavailable
from sinks.projections import fold, merge, order_doc, product_doc
from topology.stores import INDEXES, ORDER_INDEX, PRODUCT_INDEX, PRODUCTS, Row, SearchIndex, Table

TRANSIENT = (elasticsearch.ConnectionError, elasticsearch.ConnectionTimeout)
RETRY_STATUS = frozenset({429, 502, 503, 504})


def jsonable(row: Row) -> Row:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


def doc_id(table: Table, row: Row) -> str:
    return ":".join(str(v) for v in table.key_of(row))


def ensure_indexes(es: Elasticsearch, prefix: str) -> None:
    """Templates (always current) and, for an alias that does not exist yet, its first index."""
    for index in INDEXES.values():
        es.indices.put_index_template(
            name=index.alias(prefix),
            index_patterns=[f"{index.alias(prefix)}-v*"],
            template={"mappings": {"dynamic": "strict", "properties": index.properties}},
        )
        if not es.indices.exists_alias(name=index.alias(prefix)):
            es.indices.create(index=index.versioned(prefix, 1), aliases={index.alias(prefix): {}})


def current_index(es: Elasticsearch, index: SearchIndex, prefix: str) -> str:
    found = list(es.indices.get_alias(name=index.alias(prefix)))
    if len(found) != 1:
        raise SinkError(f"alias {index.alias(prefix)} points at {found}; expected exactly one index")
    return found[0]


def _all_docs(es: Elasticsearch, name: str, key: str) -> Iterator[dict[str, Any]]:
    after: list[Any] | None = None
    while True:
        page = es.search(index=name, size=500, sort=[{key: "asc"}], search_after=after, version=True)
        hits = page["hits"]["hits"]
        if not hits:
            return
        yield from hits
        after = hits[-1]["sort"]


def _copy(es: Elasticsearch, source: str, target: str, key: str) -> int:
    copied = 0
    batch: list[dict[str, Any]] = []
    for hit in _all_docs(es, source, key):
        batch += [
            {
                "index": {
                    "_index": target,
                    "_id": hit["_id"],
                    "version": hit["_source"]["version"],
                    "version_type": "external_gte",
                }
            },
            hit["_source"],
        ]
        copied += 1
        if len(batch) >= 1000:
            es.bulk(operations=batch, refresh=False)
            batch = []
    if batch:
        es.bulk(operations=batch, refresh=False)
    es.indices.refresh(index=target)
    return copied


def reindex(es: Elasticsearch, prefix: str, name: str, *, keep_old: bool = False) -> tuple[str, str, int]:
    """Build the next version of an index from the current template; (old, new, documents copied)."""
    index = INDEXES[name]
    ensure_indexes(es, prefix)
    old = current_index(es, index, prefix)
    new = index.versioned(prefix, int(old.rsplit("-v", 1)[1]) + 1)
    es.indices.create(index=new)
    es.indices.refresh(index=old)
    _copy(es, old, new, index.table.key[0])
    es.indices.update_aliases(
        actions=[
            {"remove": {"index": old, "alias": index.alias(prefix)}},
            {"add": {"index": new, "alias": index.alias(prefix)}},
        ]
    )
    es.indices.refresh(index=old)
    copied = _copy(es, old, new, index.table.key[0])  # what the sink wrote to the old index meanwhile
    if not keep_old:
        es.indices.delete(index=old)
    return old, new, copied


class SearchSink(EventSink):
    name = "search"

    def connect(self) -> None:
        self._es = Elasticsearch(self.settings.search_url, request_timeout=30, max_retries=0)
        self._ready = False

    def close(self) -> None:
        self._es.close()

    def store(self, records: list[Record]) -> tuple[int, list[Rejected]]:
        prefix = self.settings.search_prefix
        product_rows, rejected = project_each(records, product_doc)
        order_rows, refused = project_each(records, order_doc)
        rejected += refused
        products = [(r, jsonable(doc)) for r, doc in product_rows if doc is not None]
        orders = [(r, jsonable(doc)) for r, doc in order_rows if doc is not None]
        try:
            if not self._ready:
                ensure_indexes(self._es, prefix)
                self._ready = True
            plan: list[tuple[SearchIndex, list[tuple[Record, Row]], list[Row]]] = [
                (PRODUCT_INDEX, products, list(fold(PRODUCTS, (d for _, d in products)).values())),
                (ORDER_INDEX, orders, self._merged_with_stored(ORDER_INDEX, [doc for _, doc in orders])),
            ]
            operations: list[dict[str, Any]] = []
            sources: list[list[Record]] = []
            for index, pairs, docs in plan:
                by_id: dict[str, list[Record]] = {}
                for record, doc in pairs:
                    by_id.setdefault(doc_id(index.table, doc), []).append(record)
                for doc in docs:
                    _id = doc_id(index.table, doc)
                    operations += [
                        {
                            "index": {
                                "_index": index.alias(prefix),
                                "_id": _id,
                                "version": doc["version"],
                                "version_type": "external_gte",
                            }
                        },
                        doc,
                    ]
                    sources.append(by_id[_id])
            if not operations:
                return 0, rejected
            answer = self._es.bulk(operations=operations)
        except TRANSIENT as err:
            raise StoreUnavailable(f"search: {err}") from err
        except elasticsearch.ApiError as err:
            if err.status_code in RETRY_STATUS:
                raise StoreUnavailable(f"search: {err}") from err
            raise
        kept = sum(len(s) for s in sources)
        for item, records_of_doc in zip(answer["items"], sources, strict=True):
            result = item["index"]
            status = result.get("status", 200)
            if status in RETRY_STATUS:
                raise StoreUnavailable(f"search: {result.get('error')}")
            if status >= 300 and status != 409:  # 409: the stored document is as new or newer
                kept -= len(records_of_doc)
                rejected += [
                    Rejected(r.item, f"search refused {result.get('_id')}: {result.get('error')}")
                    for r in records_of_doc
                ]
        return kept, rejected

    def _merged_with_stored(self, index: SearchIndex, docs: list[Row]) -> list[Row]:
        folded = fold(index.table, docs)
        if not folded:
            return []
        ids = [":".join(map(str, key)) for key in folded]
        stored = self._es.mget(index=index.alias(self.settings.search_prefix), ids=ids)["docs"]
        merged = []
        for (_key, doc), found in zip(folded.items(), stored, strict=True):
            if found.get("found"):
                previous = dict.fromkeys(index.table.all_columns) | found["_source"]
                doc = merge(index.table, previous, doc)
            merged.append(doc)
        return merged
