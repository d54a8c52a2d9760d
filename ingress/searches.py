"""The search requests the ingress sends, built from validated queries, and their answers. Pure: no I/O.

Products (relevance, filters, facets, order, deep pages), completions, and support's order search.

What a shopper types is text, never query syntax: it goes into ``multi_match`` and
``match_phrase`` (never ``query_string``), so ``title:*``, ``AND OR (`` or regex characters
are words like any other. Prices a shopper writes in words ("under 50", "between 20 and 40",
"cheap") become a price filter or a preference for lower prices, in major units of the
currency. A page after the first is asked for with the previous answer's cursor: the sort
values of its last match (``search_after``) with a fingerprint of the query, so a cursor
only continues the search it came from.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from msgspec import UNSET

from ingress import answers
from ingress.problems import Problem
from ingress.schemas import FACET_NAMES, OrderSearchQuery, ProductQuery, SuggestQuery
from topology.stores.search import IN_STOCK, ORDER_INDEX, PRODUCT_INDEX, SUGGEST, SearchIndex

#: Fields matched by a shopper's words, with their weights.
TEXT_FIELDS = ("title^3", "brand.text^2", "category.text^2", "tags.text^1.5", "description")
#: The price ranges counted as a facet: (key, from, to) in minor units, ``to`` exclusive.
PRICE_RANGES: tuple[tuple[str, int | None, int | None], ...] = (
    ("under-10", None, 1_000),
    ("10-25", 1_000, 2_500),
    ("25-50", 2_500, 5_000),
    ("50-100", 5_000, 10_000),
    ("100-250", 10_000, 25_000),
    ("250-500", 25_000, 50_000),
    ("500-and-up", 50_000, None),
)
FACET_SIZE = 20
#: ``from`` + ``size`` may reach this at most (the index's result window); deeper pages take a cursor.
WINDOW = 10_000
#: Words a query may hold at most (each may expand to fuzzy variants and synonyms).
MAX_WORDS = 24
SORTS: dict[str, list[dict[str, Any]]] = {
    "relevance": [{"_score": "desc"}, {"sku": "asc"}],
    "price_asc": [{"price_amount": "asc"}, {"sku": "asc"}],
    "price_desc": [{"price_amount": "desc"}, {"sku": "asc"}],
    "newest": [{"updated_at": "desc"}, {"sku": "asc"}],
}
ORDER_SORT = [{"placed_at": {"order": "desc", "missing": "_last"}}, {"order_id": "asc"}]


def _source(index: SearchIndex, answer: type[msgspec.Struct]) -> list[str]:
    """The fields an answer takes from a document, each checked to be in the index (a typo fails here)."""
    names = [f.name for f in msgspec.structs.fields(answer)]
    unknown = [n for n in names if n not in index.properties]
    if unknown:
        raise KeyError(f"{index.name} has no field {', '.join(unknown)}")
    return names


PRODUCT_SOURCE = _source(PRODUCT_INDEX, answers.Product)
ORDER_SOURCE = _source(ORDER_INDEX, answers.OrderSummary)

_NUMBER = r"(\d{1,9}(?:[.,]\d{1,2})?)"
_MONEY = rf"(?:[$€£]\s*)?{_NUMBER}(?:\s*(?:[$€£]|eur|euros?|usd|dollars?|gbp|pounds?))?"
PRICE_PHRASES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), kind)
    for pattern, kind in (
        (rf"\bbetween\s+{_MONEY}\s+(?:and|to|-)\s+{_MONEY}", "between"),
        (rf"(?<![\w.,]){_MONEY}\s*(?:-|to)\s*{_MONEY}(?![\w.,])", "between"),
        (rf"(?:\b(?:under|below|less\s+than|cheaper\s+than|up\s+to|max(?:imum)?|at\s+most)\s+|<\s*){_MONEY}", "max"),
        (rf"(?:\b(?:over|above|more\s+than|at\s+least|min(?:imum)?|from)\s+|>\s*){_MONEY}", "min"),
    )
)
CHEAP_WORDS = re.compile(r"\b(?:cheap(?:est)?|budget|affordable|inexpensive|bargain|low[\s-]cost)\b", re.IGNORECASE)


@dataclass(frozen=True)
class PriceWords:
    """What a query says about price, and its words without it."""

    text: str
    min_price: int | None = None
    max_price: int | None = None
    cheap: bool = False


def _minor(number: str) -> int:
    return round(float(number.replace(",", ".")) * 100)


def price_words(q: str) -> PriceWords:
    """Price phrases of ``q`` (major units) as bounds in minor units; "cheap" and its kin as a preference."""
    text, low, high = q, None, None
    for pattern, kind in PRICE_PHRASES:
        match = pattern.search(text)
        if match is None:
            continue
        numbers = [_minor(n) for n in match.groups() if n is not None]
        if kind == "between":
            low, high = min(numbers), max(numbers)
        elif kind == "max":
            high = numbers[0]
        else:
            low = numbers[0]
        text = text[: match.start()] + " " + text[match.end() :]
    cheap = CHEAP_WORDS.search(text) is not None
    text = CHEAP_WORDS.sub(" ", text)
    return PriceWords(" ".join(text.split()), low, high, cheap)


# Cursors ---------------------------------------------------------------------------------


class _Cursor(msgspec.Struct, array_like=True, frozen=True):
    fingerprint: str
    after: list[int | float | str]


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def encode_cursor(fingerprint: str, after: list[Any]) -> str:
    raw = msgspec.json.encode(_Cursor(fingerprint, after))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, fingerprint: str, types: tuple[type, ...]) -> list[Any]:
    """The sort values a cursor continues after; 400 when it is not one of this search's cursors."""
    invalid = Problem(400, "invalid-cursor", "invalid cursor", "pass the next_cursor of the same search, unchanged")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = msgspec.json.decode(raw, type=_Cursor)
    except (binascii.Error, ValueError, msgspec.DecodeError, msgspec.ValidationError):
        raise invalid from None
    after = decoded.after
    if decoded.fingerprint != fingerprint or len(after) != len(types):
        raise invalid
    if not all(isinstance(v, t) and not isinstance(v, bool) for v, t in zip(after, types, strict=True)):
        raise invalid
    return after


# Products --------------------------------------------------------------------------------


def _bounds(low: int | None, high: int | None, what: str) -> None:
    if low is not None and high is not None and low > high:
        raise Problem(400, "invalid-query", "the query does not match the schema", f"min_{what} > max_{what}")


def _given(value: Any) -> Any:
    return None if value is UNSET else value


@dataclass(frozen=True)
class ProductSearch:
    """One validated product search: the request body and how to read its answer."""

    body: dict[str, Any]
    fingerprint: str
    sort: str
    size: int
    facets: tuple[str, ...]
    #: a first, small search to send before this one: "cheap" needs to know what kind of product is meant
    probe: dict[str, Any] | None = None


@dataclass(frozen=True)
class Cheapness:
    """What "cheap" means for one search: the kind of product its best matches are, and their usual price."""

    category: str
    scale: int  # minor units: the median price of that category among the best matches


def cheapness(found: dict[str, Any]) -> Cheapness | None:
    """The category most of the probe's matches are in, and their median price (None: no match)."""
    hits = [h["_source"] for h in found["hits"]["hits"] if h["_source"].get("category")]
    if not hits:
        return None
    categories = [h["category"] for h in hits]
    category = max(dict.fromkeys(categories), key=categories.count)  # the first of the most frequent
    prices = sorted(h["price_amount"] for h in hits if h["category"] == category and h.get("price_amount"))
    return Cheapness(category, max(prices[len(prices) // 2], 100)) if prices else None


def product_search(query: ProductQuery, cheap: Cheapness | None = None) -> ProductSearch:
    """The search request of ``query``; 400 for what cannot be run (bounds crossed, a page too deep, a bad cursor).

    With words and "cheap", the request holds a ``probe`` to send first: ``cheapness`` of its
    answer, passed back here, makes the cheaper products of the kind meant rank first (the
    others of that kind after them, other kinds last), since a cheap laptop costs more than a
    cheap laptop bag.
    """
    words = price_words(query.q)
    if len(words.text.split()) > MAX_WORDS:
        raise Problem(400, "invalid-query", "too many words", f"at most {MAX_WORDS} words")
    low = max(x for x in (_given(query.min_price), words.min_price, 0) if x is not None)
    highs = [x for x in (_given(query.max_price), words.max_price) if x is not None]
    high = min(highs) if highs else None
    _bounds(_given(query.min_price), _given(query.max_price), "price")
    filters: list[dict[str, Any]] = [{"exists": {"field": "version"}}]  # a stock level alone is no product
    filters += [
        {"term": {name: value}} for name in ("brand", "category", "tags") if (value := _given(getattr(query, name)))
    ]
    if low or high is not None:
        filters.append({"range": {"price_amount": {"gte": low, **({"lte": high} if high is not None else {})}}})
    if query.in_stock:
        filters.append({"term": {IN_STOCK: True}})
    scored: dict[str, Any] = {"bool": {"filter": filters}}
    if words.text:
        scored["bool"]["must"] = [_relevance(words.text)]
    probe = None
    if words.cheap and words.text and query.sort == "relevance":
        if cheap is None:
            probe = {"query": scored, "size": 10, "_source": ["category", "price_amount"], "track_total_hits": False}
        else:
            in_kind = {"term": {"category": cheap.category}}
            decay = {"exp": {"price_amount": {"origin": 0, "scale": cheap.scale, "decay": 0.5}}}
            functions = [{"filter": in_kind, **decay}, {"filter": {"bool": {"must_not": in_kind}}, "weight": 0.01}]
            scored = {
                "function_score": {
                    "query": scored,
                    "functions": functions,
                    "score_mode": "first",
                    "boost_mode": "multiply",
                }
            }
    sort = query.sort if words.text or query.sort != "relevance" else "newest"
    if words.cheap and not words.text and query.sort == "relevance":
        sort = "price_asc"
    facets = tuple(query.facets.split(",")) if query.facets is not UNSET else FACET_NAMES
    fingerprint = _fingerprint(query.q, query.brand, query.category, query.tags, low, high, query.in_stock, sort, cheap)
    body: dict[str, Any] = {
        "query": scored,
        "sort": SORTS[sort],
        "size": query.size + 1,  # one more than asked: whether there is a next page
        "_source": PRODUCT_SOURCE,
        "aggs": _facet_aggs(dict.fromkeys(facets)),
        "track_total_hits": WINDOW,
    }
    if query.cursor is not UNSET:
        if query.offset:
            raise Problem(400, "invalid-query", "from and cursor exclude each other", "page on with the cursor alone")
        types: tuple[type, ...] = (float if sort == "relevance" else int, str)
        body["search_after"] = decode_cursor(query.cursor, fingerprint, types)
    elif query.offset + query.size > WINDOW:
        raise Problem(400, "invalid-query", "page too deep", f"from + size at most {WINDOW}; page on with next_cursor")
    else:
        body["from"] = query.offset
    return ProductSearch(body, fingerprint, sort, query.size, tuple(dict.fromkeys(facets)), probe)


def _relevance(text: str) -> dict[str, Any]:
    """How well a product matches the words: all of them across fields, most of them with typos, the phrase."""
    return {
        "bool": {
            "should": [
                {
                    "multi_match": {
                        "query": text,
                        "type": "cross_fields",
                        "fields": list(TEXT_FIELDS),
                        "operator": "and",
                        "boost": 3,
                    }
                },
                {
                    "multi_match": {
                        "query": text,
                        "type": "best_fields",
                        "fields": list(TEXT_FIELDS),
                        "fuzziness": "AUTO",
                        "prefix_length": 1,
                        "max_expansions": 20,
                        "minimum_should_match": "2<75%",
                        "tie_breaker": 0.3,
                    }
                },
                {"match_phrase": {"title": {"query": text, "slop": 2, "boost": 2}}},
                {"match": {"title.prefix": {"query": text, "operator": "and", "boost": 0.5}}},
            ],
            "minimum_should_match": 1,
        }
    }


def _facet_aggs(facets: dict[str, None]) -> dict[str, Any]:
    aggs: dict[str, Any] = {}
    for name in facets:
        if name == "price":
            ranges = [
                {"key": key, **({"from": lo} if lo is not None else {}), **({"to": hi} if hi is not None else {})}
                for key, lo, hi in PRICE_RANGES
            ]
            aggs[name] = {"range": {"field": "price_amount", "ranges": ranges}}
        else:
            aggs[name] = {"terms": {"field": name, "size": FACET_SIZE}}
    return aggs


def product_page(search: ProductSearch, found: dict[str, Any]) -> answers.ProductPage:
    hits = found["hits"]["hits"]
    more = len(hits) > search.size
    hits = hits[: search.size]
    aggs = found.get("aggregations", {})
    facets: dict[str, Any] = {}
    for name in search.facets:
        buckets = aggs.get(name, {}).get("buckets", [])
        if name == "price":
            bounds = {key: (lo, hi) for key, lo, hi in PRICE_RANGES}
            facets[name] = [answers.PriceRange(b["key"], *bounds[b["key"]], b["doc_count"]) for b in buckets]
        else:
            facets[name] = [answers.Facet(str(b["key"]), b["doc_count"]) for b in buckets]
    total = found["hits"]["total"]
    return answers.ProductPage(
        total=total["value"],
        items=[msgspec.convert(h["_source"], answers.Product) for h in hits],
        facets=answers.Facets(**facets),
        next_cursor=encode_cursor(search.fingerprint, hits[-1]["sort"]) if more and hits else None,
        total_exact=total.get("relation", "eq") == "eq",
    )


def suggest_search(query: SuggestQuery) -> dict[str, Any]:
    completion: dict[str, Any] = {"field": SUGGEST, "size": query.size * 3, "skip_duplicates": True}
    if len(query.q) >= 4:
        completion["fuzzy"] = {"fuzziness": "AUTO", "prefix_length": 2}
    return {
        "suggest": {"s": {"prefix": query.q, "completion": completion}},
        "_source": ["sku", "title", "brand", "category"],
    }


def suggestions(query: SuggestQuery, found: dict[str, Any]) -> answers.Suggestions:
    """Each option as the product, brand or category whose input it completed, once each, best first."""
    items: dict[tuple[str, str], answers.Suggestion] = {}
    for option in found.get("suggest", {}).get("s", [{}])[0].get("options", []):
        source, text = option.get("_source", {}), option["text"]
        if text and text == source.get("brand"):
            suggestion = answers.Suggestion(text, "brand")
        elif text and text == source.get("category"):
            suggestion = answers.Suggestion(text, "category")
        else:
            suggestion = answers.Suggestion(source.get("title", text), "product", source.get("sku"))
        items.setdefault((suggestion.kind, suggestion.text.lower()), suggestion)
    return answers.Suggestions(list(items.values())[: query.size])


# Orders ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderSearch:
    body: dict[str, Any]
    fingerprint: str
    size: int


def _instant(value: datetime) -> str:
    return value.isoformat()


def order_search(query: OrderSearchQuery) -> OrderSearch:
    _bounds(_given(query.min_total), _given(query.max_total), "total")
    after, before = _given(query.placed_after), _given(query.placed_before)
    if after is not None and before is not None and after > before:
        raise Problem(400, "invalid-query", "the query does not match the schema", "placed_after > placed_before")
    filters: list[dict[str, Any]] = [
        {"term": {field: value}}
        for field, value in (("customer_id", query.customer), ("status", query.status), ("skus", query.sku))
        if value is not UNSET
    ]
    placed = {k: _instant(v) for k, v in (("gte", after), ("lt", before)) if v is not None}
    if placed:
        filters.append({"range": {"placed_at": placed}})
    total = {k: v for k, v in (("gte", _given(query.min_total)), ("lte", _given(query.max_total))) if v is not None}
    if total:
        filters.append({"range": {"total_amount": total}})
    fingerprint = _fingerprint(query.customer, query.status, query.sku, after, before, query.min_total, query.max_total)
    body: dict[str, Any] = {
        "query": {"bool": {"filter": filters}},
        "sort": ORDER_SORT,
        "size": query.size + 1,
        "_source": ORDER_SOURCE,
        "track_total_hits": WINDOW,
    }
    if query.cursor is not UNSET:
        body["search_after"] = decode_cursor(query.cursor, fingerprint, (int, str))
    return OrderSearch(body, fingerprint, query.size)


def order_page(search: OrderSearch, found: dict[str, Any]) -> answers.OrderPage:
    hits = found["hits"]["hits"]
    more = len(hits) > search.size
    hits = hits[: search.size]
    total = found["hits"]["total"]
    return answers.OrderPage(
        total=total["value"],
        items=[msgspec.convert(h["_source"], answers.OrderSummary) for h in hits],
        next_cursor=encode_cursor(search.fingerprint, hits[-1]["sort"]) if more and hits else None,
        total_exact=total.get("relation", "eq") == "eq",
    )
