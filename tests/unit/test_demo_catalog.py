"""The demo catalog: the same for a seed, valid as commands, varied enough to search; each judged query has answers."""

from __future__ import annotations

from collections import Counter

import msgspec

from bench.search_judgments import judged
from ops.demo_catalog import CATEGORIES, catalog, command
from topology.messages import UpsertProduct

PRODUCTS = catalog(seed=7, count=5000)


def test_the_same_seed_gives_the_same_catalog_and_another_seed_another() -> None:
    assert catalog(seed=7, count=50) == PRODUCTS[:50]
    assert catalog(seed=8, count=50) != PRODUCTS[:50]


def test_five_thousand_distinct_products_each_a_valid_command() -> None:
    assert len({p.sku for p in PRODUCTS}) == 5000
    for p in PRODUCTS:
        sent = msgspec.json.decode(msgspec.json.encode(command(p)), type=UpsertProduct)  # the schema's limits hold
        assert sent.title == p.title and sent.price.amount == p.price_amount > 0
    by_category = Counter(p.category for p in PRODUCTS)
    assert set(by_category) == {c.name for c in CATEGORIES} and min(by_category.values()) >= 240
    for c in CATEGORIES:
        prices = [p.price_amount for p in PRODUCTS if p.category == c.name]
        assert c.price[0] * 100 <= min(prices) and max(prices) < (c.price[1] + 1) * 100, c.name
        assert len({p.brand for p in PRODUCTS if p.category == c.name}) == len(c.brands)
    sold_out = sum(p.stock == 0 for p in PRODUCTS) / len(PRODUCTS)
    assert 0.2 < sold_out < 0.4


def test_at_least_thirty_judged_queries_each_with_many_relevant_products() -> None:
    queries = judged(PRODUCTS)
    assert len(queries) >= 30 and len({j.q for j in queries}) == len(queries)
    assert {j.kind for j in queries} == {"plain", "typo", "synonym", "brand + category", "price"}
    for j in queries:
        grades = Counter(j.grade(p) for p in PRODUCTS)
        assert grades[3] >= 5 and grades[3] + grades[2] >= 10, (j.q, grades)  # a good top 10 exists
