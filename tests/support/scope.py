"""Names private to one test (or one benchmark run) in every store of the shared stack.

One random name spells a topic prefix, a PostgreSQL schema, a Redis key prefix, a search
index prefix and a MongoDB database (and so the flows' recovery folder), so tests run in
any order side by side. ``close`` removes whatever was made under those names.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

import psycopg
import pymongo
import redis
from confluent_kafka.admin import AdminClient, NewTopic
from elasticsearch import Elasticsearch
from psycopg import sql

from flows.run import recovery_root
from ops.db import migrate
from ops.kafka_admin import delete_topics_with_prefix
from ops.topology_admin import apply
from topology.access import OPERATOR
from topology.kafka_client import client_config
from topology.settings import Settings
from topology.stores import INDEXES, LOG_INDEX


@dataclass
class Scope:
    """Private names in every store; ``settings`` are ``base`` with those names and ``overrides``."""

    base: Settings
    overrides: Mapping[str, object] = field(default_factory=dict)
    name: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")

    def __post_init__(self) -> None:
        self.settings = self.base.model_copy(
            update={
                "topic_prefix": f"{self.name}.",
                "pg_schema": self.name,
                "redis_prefix": f"{self.name}:",
                "search_prefix": f"{self.name}-",
                "mongo_database": self.name,
                **self.overrides,
            }
        )

    @property
    def schema(self) -> str:
        return self.settings.pg_schema

    @property
    def key_prefix(self) -> str:
        return self.settings.redis_prefix

    @property
    def index_prefix(self) -> str:
        return self.settings.search_prefix

    @property
    def mongo_database(self) -> str:
        return self.settings.mongo_database

    def topic(self, name: str) -> str:
        return f"{self.settings.topic_prefix}{name}"

    def create_topic(self, name: str, partitions: int = 1, config: dict[str, str] | None = None) -> str:
        """A topic of the scope's own, outside the topology; its full name."""
        topic = self.topic(name)
        admin = AdminClient({**client_config(self.settings, OPERATOR)})
        futures = admin.create_topics([NewTopic(topic, partitions, 1, config=config or {})], operation_timeout=10)
        futures[topic].result(timeout=15)
        return topic

    def apply_topology(self) -> None:
        """Every declared topic, under the scope's prefix."""
        apply(self.settings)

    def migrate(self) -> None:
        """The read models' schema, in the scope's PostgreSQL schema."""
        migrate(self.settings)

    def close(self) -> None:
        """Remove everything under the scope's names, in every store."""
        settings = self.settings
        delete_topics_with_prefix(settings, settings.topic_prefix)
        shutil.rmtree(recovery_root(settings), ignore_errors=True)
        with psycopg.connect(settings.pg_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema)))
        client = redis.Redis.from_url(settings.redis_url)
        keys = list(client.scan_iter(match=f"{self.key_prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
        with Elasticsearch(settings.search_url, request_timeout=30) as es:
            for index in es.indices.get(index=f"{self.index_prefix}*", ignore_unavailable=True, allow_no_indices=True):
                es.indices.delete(index=index)
            templates = [i.alias(self.index_prefix) for i in INDEXES.values()]  # each alias has a template of its name
            templates.append(LOG_INDEX.template(self.index_prefix))  # and the daily log indices have theirs
            for template in templates:
                if es.indices.exists_index_template(name=template):
                    es.indices.delete_index_template(name=template)
        mongo: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(settings.mongo_url)
        mongo.drop_database(self.mongo_database)
        mongo.close()
