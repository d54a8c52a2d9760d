"""The search requests built from queries (pure): price words, filters, sorts, cursors, bad input as 400."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingress import answers, searches
from ingress.problems import Problem
from ingress.schemas import OrderSearchQuery, ProductQuery, SuggestQuery
from sinks.projections import merge_product_doc, suggest_inputs
from topology.stores.search import PRODUCT_INDEX


def query(**params: str) -> ProductQuery:
    return msgspec.convert(params, ProductQuery, strict=False)


@pytest.mark.parametrize(
    ("q", "text", "low", "high", "cheap"),
    [
        ("running shoes under 50", "running shoes", None, 5000, False),
        ("headphones below $99.90", "headphones", None, 9990, False),
        ("lamp less than 30 eur", "lamp", None, 3000, False),
        ("desk between 100 and 250", "desk", 10000, 25000, False),
        ("mug 5-12", "mug", 500, 1200, False),
        ("sofa over 400", "sofa", 40000, None, False),
        ("cheap laptop", "laptop", None, None, True),
        ("Budget phone under 200", "phone", None, 20000, True),
        ("usb-c cable", "usb-c cable", None, None, False),
        ("t-shirt", "t-shirt", None, None, False),
        ("shoes from nike", "shoes from nike", None, None, False),
    ],
)
def test_price_words_become_bounds_in_minor_units(
    q: str, text: str, low: int | None, high: int | None, cheap: bool
) -> None:
    assert searches.price_words(q) == searches.PriceWords(text, low, high, cheap)


def _filters(search: searches.ProductSearch) -> list[dict[str, object]]:
    body = search.body["query"]
    body = body.get("function_score", {}).get("query", body)
    return body["bool"]["filter"]  # type: ignore[no-any-return]


def test_words_filters_and_price_words_meet_in_one_bool_query() -> None:
    search = searches.product_search(query(q="acme mug under 20", brand="acme", min_price="500", in_stock="true"))
    filters = _filters(search)
    assert {"term": {"brand": "acme"}} in filters
    assert {"term": {"in_stock": True}} in filters
    assert {"range": {"price_amount": {"gte": 500, "lte": 2000}}} in filters
    assert {"exists": {"field": "version"}} in filters, "a stock level without its product is never a match"
    text = json.dumps(search.body)
    assert '"query": "acme mug"' in text and "query_string" not in text
    assert search.body["sort"] == searches.SORTS["relevance"]


def test_syntax_is_only_text() -> None:
    for q in ("title:*", "AND OR (", "a* ?b [c TO d] /re.*gex/ \\", 'name:"x" || !y ~2 ^3'):
        body = json.dumps(searches.product_search(query(q=q)).body)
        assert "query_string" not in body and "simple_query_string" not in body and "regexp" not in body
        assert json.dumps(q)[1:-1] in body, "the words are sent as they are, as text"


def test_without_words_the_newest_come_first_and_cheap_alone_sorts_by_price() -> None:
    assert searches.product_search(query()).sort == "newest"
    assert searches.product_search(query(q="cheap")).sort == "price_asc"
    assert searches.product_search(query(q="cheap", sort="price_desc")).sort == "price_desc"
    first = searches.product_search(query(q="cheap kettle"))
    assert first.probe is not None, "cheap asks first what kind of product is meant"
    hits = [{"_source": {"category": "Kettles", "price_amount": p}} for p in (1000, 3000, 9000)]
    kind = searches.cheapness({"hits": {"hits": [*hits, {"_source": {"category": "Mugs", "price_amount": 1}}]}})
    assert kind == searches.Cheapness("Kettles", 3000)
    cheap = searches.product_search(query(q="cheap kettle"), kind)
    assert cheap.probe is None and "function_score" in cheap.body["query"], "then prefers the cheaper of that kind"
    assert cheap.fingerprint != first.fingerprint


def test_bad_combinations_are_400() -> None:
    for params in (
        {"min_price": "500", "max_price": "100"},
        {"from": "9990", "size": "20"},
        {"cursor": "abc", "from": "20"},
        {"cursor": "bm90LWEtY3Vyc29y"},
        {"q": " ".join(["word"] * (searches.MAX_WORDS + 1))},
    ):
        with pytest.raises(Problem) as refused:
            searches.product_search(query(**params))
        assert str(refused.value.status).startswith("400"), params


def test_a_cursor_continues_only_the_search_it_came_from() -> None:
    search = searches.product_search(query(q="mug", sort="price_asc"))
    hits = [{"_source": {"sku": f"s{n}", "title": "Mug"}, "sort": [100 * n, f"s{n}"]} for n in range(21)]
    page = searches.product_page(search, {"hits": {"hits": hits, "total": {"value": 40, "relation": "eq"}}})
    assert len(page.items) == 20 and page.next_cursor is not None
    after = searches.product_search(query(q="mug", sort="price_asc", cursor=page.next_cursor))
    assert after.body["search_after"] == [1900, "s19"] and "from" not in after.body
    for other in ({"q": "cup", "sort": "price_asc"}, {"q": "mug", "sort": "newest"}, {"q": "mug"}):
        with pytest.raises(Problem):
            searches.product_search(query(**other, cursor=page.next_cursor))
    last = searches.product_page(search, {"hits": {"hits": hits[:5], "total": {"value": 5}}})
    assert last.next_cursor is None


@given(st.text(min_size=1, max_size=80).filter(lambda s: s.isascii() and s.replace("-", "").replace("_", "").isalnum()))
def test_any_cursor_text_is_a_clean_400_or_a_page(cursor: str) -> None:
    try:
        searches.product_search(query(q="mug", cursor=cursor))
    except Problem as refused:
        assert str(refused.status).startswith("400")


def test_facets_asked_for_are_the_ones_counted() -> None:
    search = searches.product_search(query(facets="brand,price"))
    assert set(search.body["aggs"]) == {"brand", "price"}
    buckets = {"buckets": [{"key": "under-10", "doc_count": 3}]}
    page = searches.product_page(
        search,
        {"hits": {"hits": [], "total": {"value": 0}}, "aggregations": {"brand": {"buckets": []}, "price": buckets}},
    )
    assert page.facets.price == [answers.PriceRange("under-10", None, 1000, 3)]
    assert page.facets.category is msgspec.UNSET
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"facets": "brand,colour"}, ProductQuery, strict=False)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"sort": "popularity"}, ProductQuery, strict=False)


def test_suggestions_name_what_they_complete() -> None:
    found = {
        "suggest": {
            "s": [
                {
                    "options": [
                        {"text": "Mug", "_source": {"sku": "m1", "title": "Blue Mug", "brand": "Acme"}},
                        {"text": "Acme", "_source": {"sku": "m2", "title": "Red Mug", "brand": "Acme"}},
                        {"text": "Blue Mug", "_source": {"sku": "m1", "title": "Blue Mug", "brand": "Acme"}},
                    ]
                }
            ]
        }
    }
    answer = searches.suggestions(SuggestQuery(q="mu"), found)
    assert [(s.text, s.kind, s.sku) for s in answer.items] == [("Blue Mug", "product", "m1"), ("Acme", "brand", None)]


def test_order_search_filters_and_refuses_crossed_bounds() -> None:
    q = msgspec.convert(
        {"customer": "u1", "status": "confirmed", "placed_after": "2026-01-01T00:00:00Z", "min_total": "100"},
        OrderSearchQuery,
        strict=False,
    )
    filters = searches.order_search(q).body["query"]["bool"]["filter"]
    assert {"term": {"customer_id": "u1"}} in filters and {"term": {"status": "confirmed"}} in filters
    assert {"range": {"placed_at": {"gte": "2026-01-01T00:00:00+00:00"}}} in filters
    assert {"range": {"total_amount": {"gte": 100}}} in filters
    for bad in (
        {"min_total": "5", "max_total": "1"},
        {"placed_after": "2026-02-01T00:00:00Z", "placed_before": "2026-01-01T00:00:00Z"},
    ):
        with pytest.raises(Problem):
            searches.order_search(msgspec.convert(bad, OrderSearchQuery, strict=False))


PRODUCT = {
    "sku": "m1",
    "title": "Blue Mug",
    "description": "",
    "brand": "Acme",
    "category": "Kitchen",
    "tags": [],
    "price_amount": 900,
    "currency": "EUR",
    "owner_partner_id": None,
    "updated_at": "2026-12-01T00:00:00+00:00",
    "version": 2,
}


def stock(available: int, version: int) -> dict[str, object]:
    return {"sku": "m1", "stock_available": available, "in_stock": available > 0, "stock_version": version}


@given(st.permutations([PRODUCT, {**PRODUCT, "title": "Old Mug", "version": 1}, stock(0, 1), stock(4, 3), stock(9, 2)]))
def test_a_products_document_is_the_newest_of_each_part_in_any_order(parts: list[dict[str, object]]) -> None:
    doc = None
    for part in [*parts, *parts]:  # and again: a replay changes nothing
        doc = merge_product_doc(doc, part)
    assert doc is not None
    assert (doc["title"], doc["version"], doc["stock_available"], doc["in_stock"]) == ("Blue Mug", 2, 4, True)
    assert doc["suggest"]["weight"] == 2
    assert set(doc) <= set(PRODUCT_INDEX.properties)


def test_completion_inputs_are_the_title_its_word_suffixes_brand_and_category() -> None:
    inputs = suggest_inputs("Acme Blue Ceramic Mug", "Acme", "Kitchen")["input"]
    assert inputs == ["Acme Blue Ceramic Mug", "Blue Ceramic Mug", "Ceramic Mug", "Mug", "Acme", "Kitchen"]
