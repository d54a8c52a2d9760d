"""The search sink keeps each product's stock level on its document, from the stock levels topic.

A product's document has two parts with versions of their own (the catalog's ``version``, the
stock level's ``stock_version``): each keeps its newest, whichever arrives first, and the
in-stock filter follows the newest level.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from elasticsearch import Elasticsearch

from ingress import searches
from ingress.schemas import ProductQuery
from sinks.projections import product_doc, stock_doc
from sinks.search import ensure_indexes, jsonable, put_batch, put_products
from tests.support.history import Event
from tests.support.scope import Scope
from tests.support.sinks import SinkHarness
from topology.envelope import Producer, envelop
from topology.messages import Message, Money, ProductUpserted, StockLevelChanged
from topology.settings import Settings
from topology.stores.search import ORDER_INDEX, PRODUCT_INDEX
from topology.topics import CATALOG_EVENTS, STOCK_LEVELS, Topic

pytestmark = pytest.mark.stack
SERVICE = Producer("service", "test")


def event(topic: Topic, message: Message, seq: int) -> Event:
    envelope = msgspec.structs.replace(envelop(message, producer=SERVICE, occurred_at=datetime.now(UTC)), seq=seq)
    return Event(topic, message.sku, envelope)  # type: ignore[attr-defined]


def product(sku: str, seq: int, title: str) -> Event:
    upserted = ProductUpserted(
        sku=sku, title=title, description="", brand="acme", category="Mugs", tags=[], price=Money(900, "EUR")
    )
    return event(CATALOG_EVENTS, upserted, seq)


def level(sku: str, seq: int, available: int) -> Event:
    return event(STOCK_LEVELS, StockLevelChanged(sku=sku, total=available, reserved=0, available=available), seq)


@pytest.fixture
def sinks(settings: Settings, tmp_path: Path) -> Iterator[SinkHarness]:
    harness = SinkHarness(settings, tmp_path)
    yield harness
    harness.close()


def in_stock(es: Elasticsearch, prefix: str) -> set[str]:
    es.indices.refresh(index=PRODUCT_INDEX.alias(prefix))
    search = searches.product_search(ProductQuery(in_stock=True, size=100))
    found = es.search(index=PRODUCT_INDEX.alias(prefix), body=search.body)
    return {item.sku for item in searches.product_page(search, dict(found)).items}


def test_the_in_stock_filter_follows_the_newest_stock_level(sinks: SinkHarness) -> None:
    # A level before its product, an older level after a newer one, a product's older version last.
    sinks.produce([level("a", 2, 5), product("a", 2, "Blue mug"), level("a", 1, 0), product("a", 1, "Old mug")])
    sinks.produce([product("b", 1, "Red mug"), level("b", 1, 3), level("c", 1, 7)])  # c: stock, no product yet
    sinks.start("search")
    sinks.wait_caught_up(["search"])
    prefix = sinks.settings.search_prefix
    with Elasticsearch(sinks.settings.search_url, request_timeout=30) as es:
        assert in_stock(es, prefix) == {"a", "b"}, "a stock level without its product is no product"
        doc = es.get(index=PRODUCT_INDEX.alias(prefix), id="a")["_source"]
        assert (doc["title"], doc["version"], doc["stock_available"], doc["stock_version"]) == ("Blue mug", 2, 5, 2)
        sinks.produce([level("b", 2, 0), product("c", 1, "Green mug")])  # b sells out, c's product arrives
        sinks.wait_caught_up(["search"])
        assert in_stock(es, prefix) == {"a", "c"}


def test_a_product_write_that_loses_a_race_is_merged_again_and_loses_nothing(ns: Scope) -> None:
    """Another writer lands a product's stock part between the sink's one read (of both indices) and its bulk."""
    prefix = ns.settings.search_prefix
    products, orders = PRODUCT_INDEX.alias(prefix), ORDER_INDEX.alias(prefix)
    catalog = product_doc(product("r", 1, "Red mug").envelope)
    newer = product_doc(product("r", 2, "Blue mug").envelope)
    stock = stock_doc(level("r", 7, 3).envelope)
    assert catalog is not None and newer is not None and stock is not None
    with Elasticsearch(ns.settings.search_url, request_timeout=30) as es:
        ensure_indexes(es, prefix)
        put_products(es, products, {"r": jsonable(catalog)})
        read = es.mget

        def read_then_race(**kwargs: Any) -> Any:
            answer = read(**kwargs)
            es.mget = read  # type: ignore[method-assign]
            put_products(es, products, {"r": jsonable(stock)})  # the other writer, after the sink's read
            return answer

        es.mget = read_then_race  # type: ignore[method-assign]
        product_results, _ = put_batch(es, products, {"r": jsonable(newer)}, orders, {})
        assert product_results["r"] is not None and product_results["r"]["status"] == 200
        doc = es.get(index=products, id="r")["_source"]
        assert (doc["title"], doc["version"], doc["stock_available"], doc["stock_version"]) == ("Blue mug", 2, 3, 7)
        again, _ = put_batch(es, products, {"r": jsonable(newer)}, orders, {})
        assert again["r"] is None, "a replay changes nothing"
