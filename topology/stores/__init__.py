"""Every name a store holds, declared once: tables and columns, Redis keys, search indexes, Mongo collections.

The sinks write these stores and the ingress reads them; both import the names from here,
so a table, a column list, a key template, an index alias or a collection is typed once.
The PostgreSQL schema itself is the SQL under ``migrations/`` beside this package.
"""

from topology.stores.mongo import AUDIT, NOTIFICATION_DOCS, Collection
from topology.stores.redis import (
    CACHES,
    IDEMPOTENCY,
    ORDER_CACHE,
    PRODUCT_CACHE,
    RATE_LIMIT,
    REFRESH_TOKEN,
    REVOKED_TOKEN,
    SESSION_FAMILY,
    STOCK_CACHE,
    CacheKind,
    RedisKey,
)
from topology.stores.search import INDEXES, ORDER_INDEX, PRODUCT_INDEX, SearchIndex
from topology.stores.tables import (
    CREDENTIALS,
    MIGRATIONS,
    NOTIFICATIONS,
    ORDER_DOCS,
    ORDER_HISTORY,
    ORDER_LINES,
    ORDERS,
    PARTNER_CLIENTS,
    PAYMENT_REFUNDS,
    PAYMENTS,
    POSTGRES_TABLES,
    PRODUCTS,
    STOCK,
    USERS,
    Key,
    Row,
    Table,
)

__all__ = [
    "AUDIT",
    "CACHES",
    "CREDENTIALS",
    "IDEMPOTENCY",
    "INDEXES",
    "MIGRATIONS",
    "NOTIFICATIONS",
    "NOTIFICATION_DOCS",
    "ORDERS",
    "ORDER_CACHE",
    "ORDER_DOCS",
    "ORDER_HISTORY",
    "ORDER_INDEX",
    "ORDER_LINES",
    "PARTNER_CLIENTS",
    "PAYMENTS",
    "PAYMENT_REFUNDS",
    "POSTGRES_TABLES",
    "PRODUCTS",
    "PRODUCT_CACHE",
    "PRODUCT_INDEX",
    "RATE_LIMIT",
    "REFRESH_TOKEN",
    "REVOKED_TOKEN",
    "SESSION_FAMILY",
    "STOCK",
    "STOCK_CACHE",
    "USERS",
    "CacheKind",
    "Collection",
    "Key",
    "RedisKey",
    "Row",
    "SearchIndex",
    "Table",
]
