"""Redis, Elasticsearch (our node), MongoDB (SecantusDB) and SMTP do what the system needs of them."""

from __future__ import annotations

import os
import signal
import smtplib
import time
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path

import httpx
import pymongo
import pytest
import redis
from elasticsearch import BadRequestError, Elasticsearch, helpers
from pymongo.write_concern import WriteConcern

from ops.stack.base import port_is_free
from ops.stack.search import Search
from ops.stack.stores import Mongo, Redis, Smtp
from tests.support.scope import Scope
from topology.settings import Settings

pytestmark = pytest.mark.stack


# -- Redis ------------------------------------------------------------------
def test_redis_ttl_pipeline_and_atomic_script(redis_client: redis.Redis, ns: Scope) -> None:
    key = f"{ns.key_prefix}session"
    redis_client.set(key, "alice", ex=30)
    assert 0 < redis_client.ttl(key) <= 30
    with redis_client.pipeline() as pipe:
        for i in range(100):
            pipe.hset(f"{ns.key_prefix}stock", f"sku-{i}", i)
        pipe.execute()
    assert redis_client.hlen(f"{ns.key_prefix}stock") == 100
    # An atomic check-and-decrement in one round trip, the shape rate limits and stock levels use.
    script = redis_client.register_script(
        "local v = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') "
        "if v >= tonumber(ARGV[2]) then return redis.call('HINCRBY', KEYS[1], ARGV[1], -ARGV[2]) end return -1"
    )
    assert script(keys=[f"{ns.key_prefix}stock"], args=["sku-5", 3]) == 2
    assert script(keys=[f"{ns.key_prefix}stock"], args=["sku-5", 3]) == -1


def test_redis_keeps_data_across_restart(private_settings: Settings) -> None:
    server = Redis(private_settings)
    server.start()
    try:
        server.wait_healthy(30)
        client = redis.Redis.from_url(private_settings.redis_url)
        client.set("durable", "yes")
        client.close()
        assert server.stop() is True
        server.start()
        server.wait_healthy(30)
        client = redis.Redis.from_url(private_settings.redis_url)
        assert client.get("durable") == b"yes"
        client.close()
    finally:
        server.stop()


# -- Elasticsearch ----------------------------------------------------------
def test_search_index_bulk_query_aggregate_alias(es: Elasticsearch, ns: Scope) -> None:
    index = f"{ns.index_prefix}products-v1"
    es.indices.create(
        index=index,
        mappings={"properties": {"name": {"type": "text"}, "brand": {"type": "keyword"}, "price": {"type": "long"}}},
    )
    es.indices.put_alias(index=index, name=f"{ns.index_prefix}products")
    docs = [
        {
            "_index": index,
            "_id": f"p{i}",
            "name": f"{'red' if i % 2 else 'blue'} kettle {i}",
            "brand": f"b{i % 3}",
            "price": 1000 + i,
        }
        for i in range(30)
    ]
    ok, errors = helpers.bulk(es, docs, refresh="wait_for")
    assert ok == 30
    assert errors == []
    found = es.search(
        index=f"{ns.index_prefix}products",
        query={"bool": {"must": [{"match": {"name": "red"}}], "filter": [{"term": {"brand": "b1"}}]}},
        aggs={"brands": {"terms": {"field": "brand"}}},
        size=50,
    )
    hits = {hit["_id"] for hit in found["hits"]["hits"]}
    assert hits == {f"p{i}" for i in range(30) if i % 2 and i % 3 == 1}
    es.update(index=index, id="p1", doc={"price": 1}, refresh=True)
    assert es.get(index=index, id="p1")["_source"]["price"] == 1


def test_search_is_elasticsearch(settings: Settings, es: Elasticsearch) -> None:
    answer = httpx.get(settings.search_url, timeout=5)
    assert answer.status_code == 200
    assert answer.headers["X-Elastic-Product"] == "Elasticsearch"
    info = es.info()
    assert info["version"]["number"].startswith("8.19.")
    assert info["tagline"] == "You Know, for Search"
    assert es.ping()


def test_search_analysis_our_mappings_use(es: Elasticsearch, ns: Scope) -> None:
    index = f"{ns.index_prefix}analysis"
    es.indices.create(
        index=index,
        settings={
            "analysis": {
                "filter": {
                    "prefixes": {"type": "edge_ngram", "min_gram": 2, "max_gram": 8},
                    "shop_synonyms": {"type": "synonym_graph", "synonyms": ["tv, television", "sofa => couch"]},
                    "light": {"type": "stemmer", "language": "light_english"},
                },
                "analyzer": {
                    "prefix": {"tokenizer": "standard", "filter": ["lowercase", "asciifolding", "prefixes"]},
                    "synonyms": {"tokenizer": "standard", "filter": ["lowercase", "shop_synonyms", "light"]},
                    "parts": {"tokenizer": "whitespace", "filter": ["word_delimiter_graph", "lowercase"]},
                },
            }
        },
        mappings={
            "properties": {
                "title": {
                    "type": "text",
                    "analyzer": "english",
                    "fields": {"prefix": {"type": "text", "analyzer": "prefix", "search_analyzer": "standard"}},
                },
                "body": {"type": "text", "analyzer": "standard", "search_analyzer": "synonyms"},
            }
        },
    )

    def tokens(analyzer: str, text: str) -> list[str]:
        return [t["token"] for t in es.indices.analyze(index=index, analyzer=analyzer, text=text)["tokens"]]

    assert tokens("english", "Running the Shoes") == ["run", "shoe"]
    assert tokens("prefix", "Café") == ["ca", "caf", "cafe"]
    assert sorted(tokens("synonyms", "TV")) == ["television", "tv"]
    assert tokens("synonyms", "Sofa") == ["couch"]
    assert tokens("parts", "PowerShot-SD500") == ["power", "shot", "sd", "500"]

    es.index(index=index, id="1", document={"title": "Running shoes", "body": "a television stand"}, refresh=True)
    for field, text in (("title", "runs"), ("title.prefix", "runn"), ("body", "tv")):
        found = es.search(index=index, query={"match": {field: text}})["hits"]["hits"]
        assert [hit["_id"] for hit in found] == ["1"], (field, text)


def test_search_refuses_an_analyzer_it_does_not_have(es: Elasticsearch, ns: Scope) -> None:
    with pytest.raises(BadRequestError, match="french"):
        es.indices.create(
            index=f"{ns.index_prefix}french",
            mappings={"properties": {"title": {"type": "text", "analyzer": "french"}}},
        )


def test_search_keeps_data_across_restart(private_settings: Settings) -> None:
    server = Search(private_settings)
    server.start()
    try:
        server.wait_healthy(60)
        client = Elasticsearch(private_settings.search_url)
        client.index(index="durable", id="1", document={"name": "kept"})  # acknowledged: in the translog
        client.close()
        assert server.stop() is True
        server.start()
        server.wait_healthy(60)
        client = Elasticsearch(private_settings.search_url)
        assert client.get(index="durable", id="1")["_source"] == {"name": "kept"}
        client.close()
    finally:
        server.stop()


# -- MongoDB ----------------------------------------------------------------
def test_mongo_upsert_unique_and_ttl_indexes(mongo_db: pymongo.database.Database) -> None:
    audit = mongo_db["audit"]
    audit.create_index("at", expireAfterSeconds=3600)
    audit.create_index([("event_id", 1)], unique=True)
    ttl = {idx["name"]: idx for idx in audit.list_indexes()}
    assert ttl["at_1"]["expireAfterSeconds"] == 3600
    result = audit.update_one({"event_id": "e1"}, {"$setOnInsert": {"type": "OrderPlaced"}}, upsert=True)
    assert result.upserted_id is not None
    again = audit.update_one({"event_id": "e1"}, {"$setOnInsert": {"type": "OrderPlaced"}}, upsert=True)
    assert again.upserted_id is None
    with pytest.raises(pymongo.errors.DuplicateKeyError):
        audit.insert_one({"event_id": "e1"})
    audit.insert_many([{"event_id": f"e{i}", "user": f"u{i % 2}"} for i in range(2, 12)])
    counts = {row["_id"]: row["n"] for row in audit.aggregate([{"$group": {"_id": "$user", "n": {"$sum": 1}}}])}
    assert counts == {"u0": 5, "u1": 5, None: 1}


def test_mongo_keeps_data_across_a_kill(private_settings: Settings) -> None:
    server = Mongo(private_settings)
    server.start()
    try:
        server.wait_healthy(60)
        client: pymongo.MongoClient = pymongo.MongoClient(private_settings.mongo_url)
        # j:true is the write concern under which the server promises durability across a kill.
        journaled = client.shop.notes.with_options(write_concern=WriteConcern(j=True))
        journaled.insert_one({"_id": "n1", "text": "kept"})
        client.close()
        pid = server.pid()
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not port_is_free(private_settings.host, private_settings.mongo_port) and time.monotonic() < deadline:
            time.sleep(0.05)
        server.start()
        server.wait_healthy(60)
        client = pymongo.MongoClient(private_settings.mongo_url)
        assert client.shop.notes.find_one({"_id": "n1"}) == {"_id": "n1", "text": "kept"}
        client.close()
    finally:
        server.stop()


# -- SMTP -------------------------------------------------------------------
def test_smtp_delivers_into_the_maildir(settings: Settings, ns: Scope) -> None:
    message = EmailMessage()
    message["From"] = "shop@shopstream.test"
    message["To"] = "alice@example.test"
    message["Subject"] = f"order confirmed {ns.name}"
    message.set_content("Your order is confirmed.")
    sent_at = time.time() - 1
    with smtplib.SMTP(*settings.smtp_address, timeout=5) as smtp:
        smtp.send_message(message)
    # Only the mail delivered since: a long-lived stack's Maildir holds every notification ever sent.
    new = [path for path in (Path(Smtp(settings).maildir) / "new").iterdir() if path.stat().st_mtime >= sent_at]
    subjects = [BytesHeaderParser().parsebytes(path.read_bytes())["Subject"] for path in new]
    assert f"order confirmed {ns.name}" in subjects
