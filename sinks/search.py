"""The Elasticsearch sink: products (with their stock levels) for search, orders for support, through bulk calls.

Each index (``topology.stores.INDEXES``) is versioned behind an alias whose
versions take their settings and mappings from an index template; ``reindex`` builds
``-vN+1`` from the template, copies, swaps the alias atomically and copies again (so
writes that landed meanwhile are kept). Order documents carry the entity version as their
external version (``external_gte``), so an older or repeated event changes nothing;
orders gather several events, so the sink reads the stored document and merges. A
product's document has two parts, the catalog's and the stock level's, each with its own
version: the sink merges them into the stored document and writes under optimistic
concurrency (``put_products``). A batch costs one read across both indices and one bulk
for both (``put_batch``), and the client's JSON is msgspec's (``SERIALIZERS``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import elasticsearch
import msgspec
from elasticsearch import Elasticsearch
from elasticsearch.serializer import (
    CompatibilityModeJsonSerializer,
    CompatibilityModeNdjsonSerializer,
    JsonSerializer,
    NdjsonSerializer,
)

from sinks.base import EventSink, Record, Rejected, project_each
from sinks.exceptions import SinkError, StoreUnavailable
from sinks.projections import fold, merge, merge_product_doc, order_doc, product_doc, stock_doc
from topology.envelope import Envelope
from topology.stores import INDEXES, ORDER_INDEX, PRODUCT_INDEX, Row, SearchIndex, Table

TRANSIENT = (elasticsearch.ConnectionError, elasticsearch.ConnectionTimeout)
RETRY_STATUS = frozenset({429, 502, 503, 504})


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder()


class _Msgspec:
    """The client's JSON (and NDJSON: bulk lines) through msgspec: a third of the sink's CPU was json's."""

    def json_dumps(self, data: Any) -> bytes:
        return _ENCODER.encode(data)

    def json_loads(self, data: bytes) -> Any:
        return _DECODER.decode(data)


class _Json(_Msgspec, JsonSerializer):
    pass


class _Ndjson(_Msgspec, NdjsonSerializer):
    pass


class _CompatJson(_Msgspec, CompatibilityModeJsonSerializer):
    pass


class _CompatNdjson(_Msgspec, CompatibilityModeNdjsonSerializer):
    pass


#: The sink client's serializers, by mimetype (the 8.x client sends the compatibility ones).
SERIALIZERS = {s.mimetype: s for s in (_Json(), _Ndjson(), _CompatJson(), _CompatNdjson())}


def jsonable(row: Row) -> Row:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


def doc_id(table: Table, row: Row) -> str:
    return ":".join(str(v) for v in table.key_of(row))


def put_templates(es: Elasticsearch, prefix: str) -> None:
    """Every index's template, current (a version built later takes its settings and mappings)."""
    for index in INDEXES.values():
        es.indices.put_index_template(
            name=index.alias(prefix), index_patterns=[f"{index.alias(prefix)}-v*"], template=index.template
        )


def ensure_indexes(es: Elasticsearch, prefix: str) -> None:
    """Templates (always current), and each alias with an index built from its current template.

    An alias that does not exist yet gets its first index; an index built from other mappings
    or analysis than its template's (another fingerprint) is rebuilt behind its alias.
    """
    put_templates(es, prefix)
    for index in INDEXES.values():
        if not es.indices.exists_alias(name=index.alias(prefix)):
            try:
                es.indices.create(index=index.versioned(prefix, 1), aliases={index.alias(prefix): {}})
            except elasticsearch.BadRequestError as err:
                if err.error != "resource_already_exists_exception":  # another sink process made it meanwhile
                    raise
            continue
        current = current_index(es, index, prefix)
        meta = es.indices.get_mapping(index=current)[current]["mappings"].get("_meta", {})
        if meta.get("fingerprint") != index.fingerprint:
            rebuild(es, prefix, index)


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


def _copy(es: Elasticsearch, index: SearchIndex, source: str, target: str) -> int:
    """Every document of ``source`` into ``target``, never over a newer one there."""
    copied = 0
    batch: list[dict[str, Any]] = []
    products: dict[str, Row] = {}
    for hit in _all_docs(es, source, index.table.key[0]):
        copied += 1
        if index is PRODUCT_INDEX:  # two parts, each with its version: merged as the sink merges
            products[hit["_id"]] = hit["_source"]
            if len(products) >= 500:
                put_products(es, target, products)
                products = {}
            continue
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
        if len(batch) >= 1000:
            es.bulk(operations=batch, refresh=False)
            batch = []
    if batch:
        es.bulk(operations=batch, refresh=False)
    if products:
        put_products(es, target, products)
    es.indices.refresh(index=target)
    return copied


def rebuild(es: Elasticsearch, prefix: str, index: SearchIndex, *, keep_old: bool = False) -> tuple[str, str, int]:
    """The next version of ``index`` from its template, filled from the current one, then the alias swapped."""
    old = current_index(es, index, prefix)
    new = index.versioned(prefix, int(old.rsplit("-v", 1)[1]) + 1)
    es.indices.create(index=new)
    es.indices.refresh(index=old)
    _copy(es, index, old, new)
    es.indices.update_aliases(
        actions=[
            {"remove": {"index": old, "alias": index.alias(prefix)}},
            {"add": {"index": new, "alias": index.alias(prefix)}},
        ]
    )
    es.indices.refresh(index=old)
    copied = _copy(es, index, old, new)  # what the sink wrote to the old index meanwhile
    if not keep_old:
        es.indices.delete(index=old)
    return old, new, copied


def reindex(es: Elasticsearch, prefix: str, name: str, *, keep_old: bool = False) -> tuple[str, str, int]:
    """Build the next version of an index from the current template; (old, new, documents copied)."""
    index = INDEXES[name]
    ensure_indexes(es, prefix)
    return rebuild(es, prefix, index, keep_old=keep_old)


#: How often a product write that lost a race to another writer is read, merged and tried again.
PRODUCT_WRITE_ROUNDS = 5


def put_products(
    es: Elasticsearch, index: str, docs: dict[str, Row], rounds: int = PRODUCT_WRITE_ROUNDS
) -> dict[str, dict[str, Any] | None]:
    """Each product document part merged into the stored document and written if that changes it.

    A product's document gathers two parts with versions of their own (the catalog's and the
    stock level's, ``merge_product_doc``), so no single external version can guard it: each
    write is conditional on the stored document it was merged with (``if_seq_no``), and one
    that lost a race with another writer is read, merged and written again. Returns each id's
    bulk item result, None where the stored document already held everything.
    """
    results: dict[str, dict[str, Any] | None] = {}
    pending = docs
    for _ in range(rounds):
        stored = es.mget(index=index, ids=list(pending))["docs"]
        operations: list[dict[str, Any]] = []
        written: list[str] = []
        for (_id, doc), found in zip(pending.items(), stored, strict=True):
            lines = _product_op(index, _id, doc, found)
            if lines is None:
                results[_id] = None
                continue
            operations += lines
            written.append(_id)
        if not operations:
            return results
        answer = es.bulk(operations=operations)
        raced: dict[str, Row] = {}
        for _id, item in zip(written, answer["items"], strict=True):
            result = next(iter(item.values()))
            if result.get("status") == 409:
                raced[_id] = pending[_id]
            else:
                results[_id] = result
        if not raced:
            return results
        pending = raced
    raise StoreUnavailable(f"search: {len(pending)} product documents kept changing under the sink's writes")


def _unread(found: dict[str, Any]) -> None:
    """A document the read could not answer (a shard not yet back) is not an absent one: the batch waits."""
    if "error" in found:
        raise StoreUnavailable(f"search: {found.get('_index')}/{found.get('_id')} unreadable: {found['error']}")


def _product_op(index: str, _id: str, doc: Row, found: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The bulk lines writing one product part merged into its stored document; None when that changes nothing."""
    _unread(found)
    if not found.get("found"):
        return [{"create": {"_index": index, "_id": _id}}, merge_product_doc(None, doc)]
    merged = merge_product_doc(found["_source"], doc)
    if merged == found["_source"]:
        return None
    guard = {"if_seq_no": found["_seq_no"], "if_primary_term": found["_primary_term"]}
    return [{"index": {"_index": index, "_id": _id, **guard}}, merged]


def _order_op(index: str, table: Table, _id: str, doc: Row, found: dict[str, Any]) -> list[dict[str, Any]]:
    """The bulk lines writing one order document merged with its stored one, guarded by its external version."""
    _unread(found)
    if found.get("found"):
        doc = merge(table, dict.fromkeys(table.all_columns) | found["_source"], doc)
    return [{"index": {"_index": index, "_id": _id, "version": doc["version"], "version_type": "external_gte"}}, doc]


def put_batch(
    es: Elasticsearch, product_index: str, products: dict[str, Row], order_index: str, orders: dict[str, Row]
) -> tuple[dict[str, dict[str, Any] | None], dict[str, dict[str, Any]]]:
    """Products (as ``put_products``) and orders (merged, ``external_gte``) in one mget and one bulk.

    Returns each product id's bulk item result (None where nothing changed) and each order
    id's. Products that lost a race with another writer go on through ``put_products``.
    """
    if not products and not orders:
        return {}, {}
    wanted = [{"_index": product_index, "_id": _id} for _id in products]
    wanted += [{"_index": order_index, "_id": _id} for _id in orders]
    stored = es.mget(docs=wanted)["docs"]
    operations: list[dict[str, Any]] = []
    written: list[tuple[bool, str]] = []  # (is a product, id) per bulk item
    product_results: dict[str, dict[str, Any] | None] = {}
    for (_id, doc), found in zip(products.items(), stored[: len(products)], strict=True):
        lines = _product_op(product_index, _id, doc, found)
        if lines is None:
            product_results[_id] = None
            continue
        operations += lines
        written.append((True, _id))
    for (_id, doc), found in zip(orders.items(), stored[len(products) :], strict=True):
        operations += _order_op(order_index, ORDER_INDEX.table, _id, doc, found)
        written.append((False, _id))
    order_results: dict[str, dict[str, Any]] = {}
    if not operations:
        return product_results, order_results
    answer = es.bulk(operations=operations)
    raced: dict[str, Row] = {}
    for (is_product, _id), item in zip(written, answer["items"], strict=True):
        result = next(iter(item.values()))
        if not is_product:
            order_results[_id] = result
        elif result.get("status") == 409:
            raced[_id] = products[_id]
        else:
            product_results[_id] = result
    if raced:
        product_results |= put_products(es, product_index, raced, rounds=PRODUCT_WRITE_ROUNDS - 1)
    return product_results, order_results


def search_doc(envelope: Envelope) -> tuple[SearchIndex, Row] | None:
    """The document (or the part of one) an event gives search, with its index; None for others."""
    doc = product_doc(envelope) or stock_doc(envelope)
    if doc is not None:
        return PRODUCT_INDEX, doc
    doc = order_doc(envelope)
    return (ORDER_INDEX, doc) if doc is not None else None


class SearchSink(EventSink):
    name = "search"

    def connect(self) -> None:
        self._es = Elasticsearch(self.settings.search_url, request_timeout=30, max_retries=0, serializers=SERIALIZERS)
        self._ready = False

    def close(self) -> None:
        self._es.close()

    def store(self, records: list[Record]) -> tuple[int, list[Rejected]]:
        """One read over both indices and one bulk for both (then a re-read of any product that raced).

        A batch used to cost four round trips in turn (read and write the products, then the
        orders); the node's time per document is the same, the waits are half.
        """
        prefix = self.settings.search_prefix
        projected, rejected = project_each(records, search_doc)
        products: dict[str, list[tuple[Record, Row]]] = {}
        orders: list[tuple[Record, Row]] = []
        for record, found in projected:
            if found is None:
                continue
            index, doc = found
            if index is PRODUCT_INDEX:
                products.setdefault(doc["sku"], []).append((record, jsonable(doc)))
            else:
                orders.append((record, jsonable(doc)))
        folded_products: dict[str, Row] = {}
        for sku, pairs in products.items():
            part: Row | None = None
            for _, each in pairs:
                part = merge_product_doc(part, each)
            folded_products[sku] = part or {}
        by_id: dict[str, list[Record]] = {}
        for record, doc in orders:
            by_id.setdefault(doc_id(ORDER_INDEX.table, doc), []).append(record)
        folded_orders = {
            ":".join(map(str, key)): doc for key, doc in fold(ORDER_INDEX.table, [d for _, d in orders]).items()
        }
        try:
            if not self._ready:
                ensure_indexes(self._es, prefix)
                self._ready = True
            product_results, order_results = put_batch(
                self._es, PRODUCT_INDEX.alias(prefix), folded_products, ORDER_INDEX.alias(prefix), folded_orders
            )
        except TRANSIENT as err:
            raise StoreUnavailable(f"search: {err}") from err
        except elasticsearch.ApiError as err:
            if err.status_code in RETRY_STATUS:
                raise StoreUnavailable(f"search: {err}") from err
            raise
        kept = 0
        for sku, pairs in products.items():
            result = product_results.get(sku)
            status = result.get("status", 200) if result else 200
            if status in RETRY_STATUS:
                raise StoreUnavailable(f"search: {result.get('error') if result else ''}")
            if status >= 300:
                rejected += [
                    Rejected(r.item, f"search refused {sku}: {result and result.get('error')}") for r, _ in pairs
                ]
            else:
                kept += len(pairs)
        for _id, records_of_doc in by_id.items():
            result = order_results[_id]
            status = result.get("status", 200)
            if status in RETRY_STATUS:
                raise StoreUnavailable(f"search: {result.get('error')}")
            if status >= 300 and status != 409:  # 409: the stored document is as new or newer
                rejected += [
                    Rejected(r.item, f"search refused {result.get('_id')}: {result.get('error')}")
                    for r in records_of_doc
                ]
            else:
                kept += len(records_of_doc)
        return kept, rejected
