"""Product search, completions, product pages and support's order search, through the app, on the real node.

One index of a few hundred demo products (written with the search sink's own code) serves
the whole module. Browsing needs no token, has its own limit per client address and is
cacheable; deep pages follow cursors without gaps or repeats; hostile input is a clean 400,
never a 5xx or the store's own error.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from bench.search_relevance import drop, load
from ingress.auth.tokens import KeyRing
from ingress.bus import KafkaBus
from ops.demo_catalog import catalog
from sinks.search import ensure_indexes
from tests.support.api import Api
from tests.support.scope import Scope
from topology.settings import Settings
from topology.stores.search import ORDER_INDEX

pytestmark = pytest.mark.stack
PRODUCTS = catalog(seed=3, count=300)
BY_SKU = {p.sku: p for p in PRODUCTS}
ROOMY = {"rate_address_burst": 10_000, "rate_anonymous_burst": 10_000, "rate_burst": 10_000}
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _api(settings: Settings) -> Api:
    return Api(settings, KeyRing(settings.jwt_issuer, settings.jwt_audience), KafkaBus(settings))


@pytest.fixture(scope="module")
def shop(settings: Settings) -> Iterator[Api]:
    """The app over one loaded products index and a few orders, under names of the module's own."""
    scope = Scope(settings.model_copy(update=ROOMY))
    api = _api(scope.settings)
    try:
        load(api.search, scope.index_prefix, PRODUCTS)
        ensure_indexes(api.search, scope.index_prefix)
        orders = ORDER_INDEX.alias(scope.index_prefix)
        for n in range(12):
            doc = {
                "order_id": f"o{n:02d}",
                "customer_id": "ann" if n % 3 else "bob",
                "status": ("placed", "confirmed", "cancelled")[n % 3],
                "total_amount": 1000 * (n + 1),
                "currency": "EUR",
                "placed_at": (T0 + timedelta(days=n)).isoformat(),
                "updated_at": (T0 + timedelta(days=n)).isoformat(),
                "skus": [PRODUCTS[n].sku],
                "version": 1,
            }
            api.search.index(index=orders, id=f"o{n:02d}", document=doc)
        api.search.indices.refresh(index=orders)
        yield api
    finally:
        drop(api.search, scope.index_prefix)
        api.reads.close()
        scope.close()


def get(api: Api, path: str, token: str | None = None, **params: str) -> tuple[int, Mapping[str, str], dict]:  # type: ignore[type-arg]
    answer = api.call("GET", path, token, params=params)
    return answer.status_code, answer.headers, answer.json if answer.content else {}


def test_anyone_searches_without_a_token_and_shared_caches_may_keep_the_answer(shop: Api) -> None:
    status, headers, page = get(shop, "/v1/products", q="headphones")
    assert status == 200, page
    assert headers["Cache-Control"] == f"public, max-age={shop.settings.catalog_cache_max_age_s}"
    assert page["total"] > 0 and all(i["category"] == "Headphones" for i in page["items"][:5])
    again = shop.call(
        "GET", "/v1/products", None, params={"q": "headphones"}, headers={"If-None-Match": headers["ETag"]}
    )
    assert again.status_code == 304 and not again.content
    held_too_many = {"If-None-Match": ", ".join([headers["ETag"]] * 50)}
    refused = shop.call("GET", "/v1/products", None, params={"q": "headphones"}, headers=held_too_many)
    assert refused.status_code == 400 and refused.json["type"].endswith("invalid-if-none-match"), refused.content
    status, headers, _ = get(shop, "/v1/products", shop.token("ann", "customer"), q="headphones")
    assert status == 200 and headers["Cache-Control"] == "no-store", "an answer to a token is never shared"
    assert get(shop, "/v1/products", "not-a-token", q="mug")[0] == 401, "a token sent is checked"


def test_typos_synonyms_and_price_words_find_what_was_meant(shop: Api) -> None:
    for q, category in (("headphnes", "Headphones"), ("couch", "Sofas"), ("television", "Televisions")):
        _, _, page = get(shop, "/v1/products", q=q, size="5")
        assert [i["category"] for i in page["items"]] == [category] * 5, (q, page["items"])
    _, _, under = get(shop, "/v1/products", q="kettle under 40")
    assert under["items"] and all(i["price_amount"] <= 4000 and i["category"] == "Kettles" for i in under["items"])
    _, _, words = get(shop, "/v1/products", q="title:* AND OR ( [x TO y] /.*/ ~ \\")
    assert words["total"] >= 0, "query syntax is only words"


def test_filters_facets_and_sorts(shop: Api) -> None:
    _, _, page = get(shop, "/v1/products", category="Mugs", in_stock="true", size="100", sort="price_asc")
    expected = [p for p in PRODUCTS if p.category == "Mugs" and p.stock > 0]
    assert page["total"] == len(expected)
    prices = [i["price_amount"] for i in page["items"]]
    assert prices == sorted(prices) and all(i["in_stock"] and i["stock_available"] > 0 for i in page["items"])
    assert sum(r["count"] for r in page["facets"]["price"]) == len(expected)
    assert page["facets"]["category"] == [{"value": "Mugs", "count": len(expected)}]
    _, _, desc = get(shop, "/v1/products", category="Mugs", sort="price_desc", facets="brand")
    assert desc["items"][0]["price_amount"] == max(p.price_amount for p in PRODUCTS if p.category == "Mugs")
    assert set(desc["facets"]) == {"brand"}
    brand = desc["facets"]["brand"][0]["value"]
    _, _, one = get(shop, "/v1/products", category="Mugs", brand=brand, size="100")
    assert {i["brand"] for i in one["items"]} == {brand}


def test_deep_pages_follow_cursors_without_gaps_or_repeats(shop: Api) -> None:
    for params in ({"q": "shoes"}, {"sort": "price_asc"}, {"sort": "newest", "in_stock": "true"}):
        seen: list[str] = []
        status, _, page = get(shop, "/v1/products", size="37", **params)
        while True:
            assert status == 200, page
            seen += [i["sku"] for i in page["items"]]
            if page["next_cursor"] is None:
                break
            status, _, page = get(shop, "/v1/products", size="37", cursor=page["next_cursor"], **params)
        assert len(seen) == len(set(seen)) == page["total"], params
    _, _, first = get(shop, "/v1/products", q="shoes")
    status, _, refused = get(shop, "/v1/products", q="boots", cursor=first["next_cursor"])
    assert status == 400 and refused["type"].endswith("/invalid-cursor"), "a cursor continues its own search only"


def test_suggestions_complete_titles_brands_and_categories(shop: Api) -> None:
    status, headers, found = get(shop, "/v1/products/suggest", q="headph")
    assert status == 200 and headers["Cache-Control"].startswith("public")
    assert ("category", "Headphones") in {(s["kind"], s["text"]) for s in found["items"]}
    sony = next(p for p in PRODUCTS if p.brand == "Sony")
    typed = sony.title[: len("Sony ") + 2]  # the brand and the model's first letters
    _, _, titles = get(shop, "/v1/products/suggest", q=typed.lower())
    products = [s for s in titles["items"] if s["kind"] == "product"]
    assert products and all(BY_SKU[s["sku"]].title == s["text"] for s in products), titles
    assert all(s["text"].startswith(typed) for s in products), titles
    _, _, typo = get(shop, "/v1/products/suggest", q="heaphon")
    assert any("Headphones" in s["text"] for s in typo["items"]), typo
    assert get(shop, "/v1/products/suggest")[0] == 400


def test_a_product_page_has_the_stock(shop: Api) -> None:
    product = next(p for p in PRODUCTS if p.stock == 0)
    status, headers, page = get(shop, f"/v1/products/{product.sku}")
    assert status == 200 and "ETag" in headers
    assert (page["title"], page["in_stock"], page["stock_available"]) == (product.title, False, 0)
    assert get(shop, "/v1/products/no-such-sku")[0] == 404
    assert get(shop, "/v1/products/bad%20sku!")[0] == 404


def test_support_searches_orders_and_customers_may_not(shop: Api) -> None:
    sue = shop.token("sue", "support")
    status, _, page = get(shop, "/v1/orders", sue, customer="ann", status="confirmed")
    assert status == 200, page
    assert {o["order_id"] for o in page["items"]} == {"o01", "o04", "o07", "o10"}
    assert [o["order_id"] for o in page["items"]] == ["o10", "o07", "o04", "o01"], "newest placed first"
    between = {
        "placed_after": (T0 + timedelta(days=2)).isoformat(),
        "placed_before": (T0 + timedelta(days=6)).isoformat(),
        "min_total": "4000",
        "size": "2",
    }
    _, _, window = get(shop, "/v1/orders", sue, **between)
    assert [o["order_id"] for o in window["items"]] == ["o05", "o04"] and window["next_cursor"]
    _, _, rest = get(shop, "/v1/orders", sue, **between, cursor=window["next_cursor"])
    assert [o["order_id"] for o in rest["items"]] == ["o03"] and rest["next_cursor"] is None
    assert get(shop, "/v1/orders", shop.token("root", "admin"), sku=PRODUCTS[3].sku)[2]["total"] == 1
    assert get(shop, "/v1/orders", shop.token("ann", "customer"))[0] == 403
    assert get(shop, "/v1/orders")[0] == 401
    assert get(shop, "/v1/orders", sue, placed_after="2026-01-01T00:00:00")[0] == 400, "a time needs its zone"


HOSTILE = [
    {"q": "title:*"},
    {"q": "AND OR ("},
    {"q": "/[a-z]+.*(?:x)/"},
    {"q": "*?\\\\~^!{}[]\"'"},
    {"q": "a" * 201},
    {"q": " ".join(["headphones"] * 30)},
    {"q": "\u202eevil\u202c e\u0301 ß" * 10},
    {"q": "🚀🧪 ñandú Ωmega 東京"},
    {"q": "%ed%a0%80"},
    {"q": "\x00"},
    {"size": "100000"},
    {"size": "0"},
    {"size": "100", "from": "9950"},
    {"from": "-1"},
    {"min_price": "-5"},
    {"max_price": "-1"},
    {"min_price": "9000", "max_price": "100"},
    {"min_price": "1e400"},
    {"sort": "popularity"},
    {"sort": "price_asc;drop"},
    {"facets": "colour"},
    {"facets": "brand,,price"},
    {"cursor": "!!!"},
    {"cursor": "eyJhIjoxfQ"},
    {"in_stock": "maybe"},
    {"brand": "x" * 81},
    {"unknown": "1"},
]


@pytest.mark.parametrize("params", HOSTILE, ids=[str(i) for i in range(len(HOSTILE))])
def test_hostile_queries_get_a_clear_answer_never_a_server_error(shop: Api, params: dict[str, str]) -> None:
    query = "&".join(f"{k}={v if '%' in v else quote(v)}" for k, v in params.items())
    answer = shop.client.simulate_get("/v1/products", query_string=query)
    assert answer.status_code in (200, 400), (params, answer.status_code, answer.text[:300])
    if answer.status_code == 400:
        assert answer.headers["Content-Type"] == "application/problem+json"
        leaked = answer.text.lower()
        assert not any(w in leaked for w in ("elasticsearch", "exception", "traceback", "lucene")), answer.text
    suggest = shop.client.simulate_get("/v1/products/suggest", query_string=query)
    assert suggest.status_code in (200, 400), (params, suggest.text[:300])


def test_callers_without_a_token_have_their_own_limit_per_address(shop: Api) -> None:
    limits = {
        "rate_anonymous_burst": 3,
        "rate_anonymous_per_s": 0.01,
        "redis_prefix": f"{shop.settings.redis_prefix}x:",
    }
    tight = _api(shop.settings.model_copy(update=limits))
    try:
        statuses = [tight.call("GET", "/v1/products", None, params={"q": "mug"}).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        assert tight.call("GET", "/v1/products", tight.token("ann", "customer")).status_code == 200
    finally:
        tight.reads.close()
