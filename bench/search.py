"""Product search latency through the ingress next to the same search sent straight to the node, same run.

Run with the stack up: ``python -m bench.search [--requests 2000]``. The demo catalog (5,000
products) is written into a scratch prefix with the search sink's own code
(``bench.search_relevance.load``); the real ingress runs under gunicorn with the project's
config. For every request a judged query (``bench.search_judgments``, typos, synonyms, price
words, sorted by relevance, with facets) is asked two ways, back to back, in alternating
order, one at a time over kept-alive connections:

- ingress: ``GET /v1/products?q=...`` without a token (the anonymous limit checked in Redis,
  the query validated and built, the node's answer decoded and encoded again);
- direct: the body the ingress builds for that query (``ingress.searches``) POSTed to the
  node's ``_search``, the answer read whole.

Prints p50/p99 of each and what the ingress adds at p50 (target: under 5 ms).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import msgspec
from elasticsearch import Elasticsearch

from bench.search_judgments import judged
from bench.search_relevance import drop, load
from ingress import searches
from ingress.schemas import ProductQuery
from ops.demo_catalog import catalog
from tests.support.processes import free_port, start_gunicorn, stop_all
from tests.support.scope import Scope
from topology.settings import Settings
from topology.stores.search import PRODUCT_INDEX

TARGET_ADDED_MS = 5.0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000, help="queries asked each way")
    parser.add_argument("--count", type=int, default=5000, help="products in the index")
    args = parser.parse_args()
    settings = Settings.from_env()
    scope = Scope(settings, name=f"bsearch{uuid.uuid4().hex[:8]}")
    folder = Path(tempfile.mkdtemp(prefix="bench-search-"))
    products = catalog(7, args.count)
    queries = [j.q for j in judged(products)]
    processes: list[subprocess.Popen[bytes]] = []
    alias = PRODUCT_INDEX.alias(scope.index_prefix)
    with httpx.Client(timeout=30) as direct_client, Elasticsearch(settings.search_url, request_timeout=120) as es:
        try:
            load(es, scope.index_prefix, products)
            unlimited = ("SHOP_RATE_ANONYMOUS_PER_S", "SHOP_RATE_ANONYMOUS_BURST", "SHOP_RATE_ADDRESS_PER_S")
            env = {
                **scope.settings.to_env(),
                **dict.fromkeys((*unlimited, "SHOP_RATE_ADDRESS_BURST"), "1000000"),
                "SHOP_INGRESS_WORKERS": "1",
            }
            port = free_port()
            processes.append(start_gunicorn("ingress.wsgi:app_from_env()", env, port, folder / "ingress.log"))
            bodies = {
                q: msgspec.json.encode(searches.product_search(msgspec.convert({"q": q}, ProductQuery)).body)
                for q in queries
            }
            timings: dict[str, list[float]] = {"ingress": [], "direct": []}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as ingress_client:

                def via_ingress(q: str) -> None:
                    answer = ingress_client.get("/v1/products", params={"q": q})
                    if answer.status_code != 200:
                        raise RuntimeError(f"ingress answered {answer.status_code}: {answer.text[:300]}")

                def straight(q: str) -> None:
                    answer = direct_client.post(
                        f"{settings.search_url}/{alias}/_search",
                        content=bodies[q],
                        headers={"Content-Type": "application/json"},
                    )
                    if answer.status_code != 200:
                        raise RuntimeError(f"node answered {answer.status_code}: {answer.text[:300]}")
                    answer.json()

                for q in queries:  # warm both paths and the node's caches alike
                    via_ingress(q)
                    straight(q)
                for n in range(args.requests):
                    q = queries[n % len(queries)]
                    pair = (("ingress", via_ingress), ("direct", straight))
                    for name, ask in pair if n % 2 else pair[::-1]:
                        started = time.perf_counter()
                        ask(q)
                        timings[name].append((time.perf_counter() - started) * 1000)
        finally:
            stop_all(processes)
            drop(es, scope.index_prefix)
            scope.close()
    print(f"\n{len(products)} products, {len(queries)} distinct queries, {args.requests} requests each way\n")
    print(f"| {'path':<32} | {'p50 ms':>7} | {'p99 ms':>7} | {'mean ms':>7} |")
    print(f"|{'-' * 34}|{'-' * 9}|{'-' * 9}|{'-' * 9}|")
    for name, label in (("direct", "straight to the node (_search)"), ("ingress", "through the ingress (anonymous)")):
        values = timings[name]
        print(
            f"| {label:<32} | {percentile(values, 50):>7.2f} | {percentile(values, 99):>7.2f} |"
            f" {statistics.fmean(values):>7.2f} |"
        )
    added = percentile(timings["ingress"], 50) - percentile(timings["direct"], 50)
    verdict = "met" if added < TARGET_ADDED_MS else "NOT met"
    print(f"\nthe ingress adds {added:.2f} ms at p50 (target < {TARGET_ADDED_MS:.0f} ms): {verdict}")


if __name__ == "__main__":
    main()
