"""Search indexes: each a versioned index behind an alias, with its analysis and mappings.

``{prefix}products`` is an alias pointing at ``{prefix}products-vN``; a reindex builds
``-vN+1`` and swaps the alias. Documents are read-model rows of the index's table; a
product's document also carries its stock level (``STOCK_FIELDS``, from the stock levels
topic) and its completion inputs (``SUGGEST``).

The analysis names are Elasticsearch's own (``analysis-common``'s filter and analyzer
types), so the same settings run on a stock node and on ours, where the project's plugin
registers them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from topology.stores.tables import ORDER_DOCS, PRODUCTS, Table

KEYWORD = {"type": "keyword"}
DATE = {"type": "date"}
LONG = {"type": "long"}

#: Words a shopper uses for the same thing (search time only: the index stays as written).
SYNONYMS = (
    "tv, television",
    "laptop, notebook computer",
    "phone, smartphone, mobile phone, cellphone",
    "headphones, headset, earphones",
    "sofa, couch, settee",
    "sneakers, trainers",
    "hoodie, hooded sweatshirt",
    "sweater, jumper, pullover",
    "tshirt, t-shirt, tee",
    "pants, trousers",
    "mug, cup",
    "bike, bicycle",
    "fridge, refrigerator",
    "backpack, rucksack",
    "speaker, loudspeaker",
    "kettle, water boiler",
    "jacket, coat",
    "lamp, light",
    "cellphone case, phone case",
    "watch, wristwatch",
    "stroller, pushchair, pram",
)

#: Analysis of the products index: English text (stemmed, accents folded; synonyms at search
#: time), word prefixes for search as you type, and folded text for the completion suggester.
PRODUCT_ANALYSIS: dict[str, Any] = {
    "filter": {
        "shop_english_possessive": {"type": "stemmer", "language": "possessive_english"},
        "shop_english_stop": {"type": "stop", "stopwords": "_english_"},
        "shop_english_stemmer": {"type": "stemmer", "language": "english"},
        "shop_synonyms": {"type": "synonym_graph", "synonyms": list(SYNONYMS)},
        "shop_prefixes": {"type": "edge_ngram", "min_gram": 1, "max_gram": 20},
    },
    "analyzer": {
        "shop_english": {
            "type": "custom",
            "tokenizer": "standard",
            "filter": [
                "shop_english_possessive",
                "lowercase",
                "asciifolding",
                "shop_english_stop",
                "shop_english_stemmer",
            ],
        },
        "shop_english_search": {
            "type": "custom",
            "tokenizer": "standard",
            "filter": [
                "shop_english_possessive",
                "lowercase",
                "asciifolding",
                "shop_synonyms",
                "shop_english_stop",
                "shop_english_stemmer",
            ],
        },
        "shop_prefix": {
            "type": "custom",
            "tokenizer": "standard",
            "filter": ["lowercase", "asciifolding", "shop_prefixes"],
        },
        "shop_folded": {"type": "custom", "tokenizer": "standard", "filter": ["lowercase", "asciifolding"]},
    },
}
ENGLISH = {"type": "text", "analyzer": "shop_english", "search_analyzer": "shop_english_search"}
#: A keyword (facets, filters, sorting) that is also matched as English text (``FIELD.text``).
FACET = {"type": "keyword", "fields": {"text": ENGLISH}}

#: The stock level a product's document carries: units available, whether any are, and the
#: level's own version (the stock level's ``seq``, apart from the product's ``version``).
STOCK_AVAILABLE, IN_STOCK, STOCK_VERSION = "stock_available", "in_stock", "stock_version"
STOCK_FIELDS = (STOCK_AVAILABLE, IN_STOCK, STOCK_VERSION)
#: The completion suggester's field (inputs derived from the title, brand and category).
SUGGEST = "suggest"


@dataclass(frozen=True)
class SearchIndex:
    name: str
    table: Table
    properties: dict[str, Any]
    analysis: dict[str, Any] = field(default_factory=dict)

    def alias(self, prefix: str) -> str:
        return f"{prefix}{self.name}"

    def versioned(self, prefix: str, n: int) -> str:
        return f"{prefix}{self.name}-v{n}"

    @property
    def template(self) -> dict[str, Any]:
        """The index template's body: settings (analysis) and strict mappings, with their fingerprint."""
        template: dict[str, Any] = {
            "mappings": {"dynamic": "strict", "properties": self.properties, "_meta": {"fingerprint": self.fingerprint}}
        }
        if self.analysis:
            template["settings"] = {"analysis": self.analysis}
        return template

    @property
    def fingerprint(self) -> str:
        """A digest of the mappings and analysis: an index built from another one is rebuilt."""
        text = json.dumps([self.properties, self.analysis], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


PRODUCT_INDEX = SearchIndex(
    "products",
    PRODUCTS,
    {
        "sku": KEYWORD,
        "title": {
            **ENGLISH,
            "fields": {
                "raw": KEYWORD,
                "prefix": {"type": "text", "analyzer": "shop_prefix", "search_analyzer": "shop_folded"},
            },
        },
        "description": ENGLISH,
        "brand": FACET,
        "category": FACET,
        "tags": FACET,
        "price_amount": LONG,
        "currency": KEYWORD,
        "owner_partner_id": KEYWORD,
        "updated_at": DATE,
        "version": LONG,
        STOCK_AVAILABLE: LONG,
        IN_STOCK: {"type": "boolean"},
        STOCK_VERSION: LONG,
        SUGGEST: {"type": "completion", "analyzer": "shop_folded", "max_input_length": 60},
    },
    PRODUCT_ANALYSIS,
)
ORDER_INDEX = SearchIndex(
    "orders",
    ORDER_DOCS,
    {
        "order_id": KEYWORD,
        "customer_id": KEYWORD,
        "status": KEYWORD,
        "total_amount": LONG,
        "currency": KEYWORD,
        "placed_at": DATE,
        "carrier": KEYWORD,
        "tracking_code": KEYWORD,
        "cancel_reason": {"type": "text"},
        "updated_at": DATE,
        "skus": KEYWORD,
        "version": LONG,
    },
)
INDEXES = {i.name: i for i in (PRODUCT_INDEX, ORDER_INDEX)}
