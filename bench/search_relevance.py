"""NDCG@10 of product search over the demo catalog, for the judged queries of ``bench.search_judgments``.

Run with the stack up: ``python -m bench.search_relevance [--count 5000]``. The demo catalog
(``ops.demo_catalog``) is written into a scratch index prefix with the search sink's own
code (its projections and ``put_products``: the same documents the sink writes from the
catalog and stock events), each judged query is built as the ingress builds it
(``ingress.searches``) and sent to the node, and each top 10 is scored against the ideal
order of the whole catalog's grades: NDCG@10 = DCG@10 / ideal DCG@10, with gain 2^grade - 1
and discount log2(rank + 1). Prints the figure per query, per kind of query and overall, next to
the baseline measured in the same run on the same index: what the ingress asked before (a
``match`` on the title alone).
"""

from __future__ import annotations

import argparse
import math
import statistics
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
from elasticsearch import Elasticsearch

from bench.search_judgments import Judged, judged
from ingress import searches
from ingress.schemas import ProductQuery
from ops.demo_catalog import DemoProduct, catalog, command
from sinks.projections import merge_product_doc, product_doc, stock_doc
from sinks.search import ensure_indexes, jsonable, put_products
from topology.envelope import Envelope, Producer, envelop
from topology.messages import Money, ProductUpserted, StockLevelChanged
from topology.settings import Settings
from topology.stores.search import INDEXES, PRODUCT_INDEX

K = 10
CATALOG = Producer("service", "catalog")


def _event(payload: ProductUpserted | StockLevelChanged, at: datetime) -> Envelope:
    return msgspec.structs.replace(envelop(payload, producer=CATALOG, occurred_at=at), seq=1)


def documents(products: list[DemoProduct]) -> dict[str, dict[str, object]]:
    """Each product's search document as the sink builds it from its catalog and stock events."""
    at = datetime(2026, 12, 1, tzinfo=UTC)
    docs = {}
    for n, p in enumerate(products):
        upsert = command(p)
        fields = {f: getattr(upsert, f) for f in ("sku", "title", "description", "brand", "category", "tags")}
        product = ProductUpserted(**fields, price=Money(p.price_amount, upsert.price.currency))
        level = StockLevelChanged(sku=p.sku, total=p.stock, reserved=0, available=p.stock)
        parts = [product_doc(_event(product, at.replace(second=n % 60))), stock_doc(_event(level, at))]
        doc = None
        for part in parts:
            if part is not None:
                doc = merge_product_doc(doc, jsonable(part))
        docs[p.sku] = doc or {}
    return docs


def load(es: Elasticsearch, prefix: str, products: list[DemoProduct]) -> None:
    """The products into ``{prefix}products`` through the sink's writes, refreshed."""
    ensure_indexes(es, prefix)
    docs = documents(products)
    skus = list(docs)
    for start in range(0, len(skus), 500):
        put_products(es, PRODUCT_INDEX.alias(prefix), {s: docs[s] for s in skus[start : start + 500]})
    es.indices.refresh(index=PRODUCT_INDEX.alias(prefix))


def drop(es: Elasticsearch, prefix: str) -> None:
    for index in INDEXES.values():
        for name in es.indices.get(index=f"{index.alias(prefix)}-v*", allow_no_indices=True):
            es.indices.delete(index=name)
        es.options(ignore_status=404).indices.delete_index_template(name=index.alias(prefix))


def baseline(es: Elasticsearch, prefix: str, q: str, k: int = K) -> list[str]:
    """The first ``k`` of what the ingress asked before this search: ``match`` on the title alone."""
    body = {"query": {"match": {"title": q}}, "size": k, "_source": ["sku"]}
    return [h["_source"]["sku"] for h in es.search(index=PRODUCT_INDEX.alias(prefix), body=body)["hits"]["hits"]]


def top(es: Elasticsearch, prefix: str, q: str, k: int = K) -> list[str]:
    """The SKUs of the first ``k`` matches of ``q``, as the ingress asks for them."""
    query = msgspec.convert({"q": q, "size": k, "facets": "brand"}, ProductQuery)
    search = searches.product_search(query)
    if search.probe is not None:  # as Queries.products does
        probed = es.search(index=PRODUCT_INDEX.alias(prefix), body=search.probe)
        search = searches.product_search(query, searches.cheapness(dict(probed)))
    found = es.search(index=PRODUCT_INDEX.alias(prefix), body=search.body)
    return [item.sku for item in searches.product_page(search, dict(found)).items]


def ndcg(ranked: list[str], grades: dict[str, int], k: int = K) -> float:
    def dcg(gains: list[int]) -> float:
        return sum((2.0**g - 1) / math.log2(rank + 2) for rank, g in enumerate(gains[:k]))

    ideal = dcg(sorted(grades.values(), reverse=True))
    return dcg([grades.get(sku, 0) for sku in ranked]) / ideal if ideal else 0.0


@dataclass(frozen=True)
class Scored:
    judged: Judged
    ndcg: float
    relevant_in_top: int  # of the top 10, how many are graded above 0
    baseline: float  # NDCG@10 of the title-only match, same index, same run


def score(es: Elasticsearch, prefix: str, products: list[DemoProduct]) -> list[Scored]:
    scored = []
    for j in judged(products):
        grades = {p.sku: j.grade(p) for p in products}
        ranked = top(es, prefix, j.q)
        before = ndcg(baseline(es, prefix, j.q), grades)
        scored.append(Scored(j, ndcg(ranked, grades), sum(grades.get(s, 0) > 0 for s in ranked), before))
    return scored


def mean(scored: list[Scored]) -> float:
    return statistics.fmean(s.ndcg for s in scored)


def score_catalog(settings: Settings, prefix: str, seed: int, count: int) -> list[Scored]:
    """The demo catalog (``seed``, ``count``) loaded under ``prefix``, every judged query scored, the index dropped."""
    products = catalog(seed, count)
    with Elasticsearch(settings.search_url, request_timeout=120) as es:
        try:
            load(es, prefix, products)
            return score(es, prefix, products)
        finally:
            drop(es, prefix)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    scored = score_catalog(Settings.from_env(), f"bench-relevance-{uuid.uuid4().hex[:8]}-", args.seed, args.count)
    print(f"\n| {'query':<30} | {'kind':<16} | NDCG@10 | relevant in top 10 | title match (before) |")
    print(f"|{'-' * 32}|{'-' * 18}|---------|--------------------|----------------------|")
    for s in scored:
        print(
            f"| {s.judged.q:<30} | {s.judged.kind:<16} | {s.ndcg:>7.3f} | {s.relevant_in_top:>18} |"
            f" {s.baseline:>20.3f} |"
        )
    print()
    for kind in dict.fromkeys(s.judged.kind for s in scored):
        group = [s for s in scored if s.judged.kind == kind]
        before = statistics.fmean(s.baseline for s in group)
        print(f"{kind:<16} {len(group):>3} queries  NDCG@10 {mean(group):.3f}  (title match: {before:.3f})")
    before = statistics.fmean(s.baseline for s in scored)
    print(f"{'all':<16} {len(scored):>3} queries  NDCG@10 {mean(scored):.3f}  (title match: {before:.3f})", end="")
    print(f"  ({args.count} products)")


if __name__ == "__main__":
    main()
