"""Every read of the ingress: read models (PostgreSQL), the stock cache (Redis), search, notifications (MongoDB).

The resources call ``Queries`` and answer with what it returns, the Structs of
``answers.py``; nothing else in the ingress reads a store for a client. The columns a read
selects are the fields of the Struct it answers, checked against the declared table, so a
read and its answer cannot disagree. Reads go to the replica unless they must be fresh
(``ReadModel``). A store that does not answer is ``StoreUnavailable`` (503).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import elasticsearch
import msgspec
import pymongo
import redis
from elasticsearch import Elasticsearch
from psycopg import sql

from ingress import answers, searches
from ingress.exceptions import ReadModelUnavailable, StoreUnavailable
from ingress.policy import Resource
from ingress.problems import Problem
from ingress.readmodel import ReadModel
from ingress.schemas import MyOrdersQuery, OrderSearchQuery, ProductQuery, SuggestQuery
from ingress.statements import both, equals, equals_any, newest_first, not_null, select
from topology.messages import Money
from topology.messages.users import Preferences
from topology.settings import Settings
from topology.stores import (
    NOTIFICATION_DOCS,
    NOTIFICATIONS,
    ORDER_HISTORY,
    ORDER_INDEX,
    ORDER_LINES,
    ORDERS,
    PAYMENT_REFUNDS,
    PAYMENTS,
    PRODUCT_INDEX,
    PRODUCTS,
    STOCK,
    STOCK_CACHE,
    USER_ADDRESSES,
    USER_DEVICES,
    USER_PREFERENCES,
    USER_STATUS,
    USERS,
    SearchIndex,
)

#: How long a worker trusts a catalog price it read (a price change applies within that).
PRICE_TTL_S = 2.0
PRICE_CACHE_MAX = 10_000
#: How often a read that waits for its row asks again.
POLL_S = 0.05
log = logging.getLogger(__name__)


def _fields(struct: type[msgspec.Struct], *without: str) -> tuple[str, ...]:
    return tuple(f.name for f in msgspec.structs.fields(struct) if f.name not in without)


def as_json(row: dict[str, Any]) -> dict[str, Any]:
    """A row ready for JSON: times as ISO 8601, fixed-width text (``char(3)``) without its padding."""
    return {
        k: v.isoformat() if isinstance(v, datetime) else (v.strip() if isinstance(v, str) else v)
        for k, v in row.items()
    }


ORDER = select(ORDERS, _fields(answers.Order, "lines", "history", "payment"), equals(ORDERS, "order_id"))
LINES = select(ORDER_LINES, _fields(answers.OrderLine), equals(ORDER_LINES, "order_id"), order_by="line_no")
HISTORY = select(ORDER_HISTORY, _fields(answers.StatusChange), equals(ORDER_HISTORY, "order_id"), order_by="version")
PAYMENT = select(PAYMENTS, _fields(answers.OrderPayment, "refunded_amount"), equals(PAYMENTS, "order_id"))
REFUNDS = select(PAYMENT_REFUNDS, ("amount",), equals(PAYMENT_REFUNDS, "order_id"))
ORDER_OWNER = select(ORDERS, ("customer_id",), equals(ORDERS, "order_id"))
ORDER_STATE = select(ORDERS, ("customer_id", "status"), equals(ORDERS, "order_id"))
ORDER_SKUS = select(ORDER_LINES, ("sku",), equals(ORDER_LINES, "order_id"))
SKU_OWNER = select(PRODUCTS, ("owner_partner_id",), equals(PRODUCTS, "sku"))
SKU_OWNERS = select(PRODUCTS, ("sku", "owner_partner_id"), equals_any(PRODUCTS, "sku"))
PRICES = select(PRODUCTS, ("sku", "price_amount", "currency"), equals_any(PRODUCTS, "sku"))
STOCK_LEVEL = select(STOCK, _fields(answers.StockLevel, "source"), equals(STOCK, "sku"))
PROFILE = select(
    USERS, _fields(answers.Profile, "status", "preferences", "addresses", "devices"), equals(USERS, "user_id")
)
PREFERENCES = select(USER_PREFERENCES, ("preferences",), equals(USER_PREFERENCES, "user_id"))
ADDRESSES = select(USER_ADDRESSES, ("addresses",), equals(USER_ADDRESSES, "user_id"))
DEVICES = select(USER_DEVICES, ("devices",), equals(USER_DEVICES, "user_id"))
STATUS = select(USER_STATUS, ("status",), equals(USER_STATUS, "user_id"))
#: The preferences of a user who never chose any.
NO_PREFERENCES = msgspec.to_builtins(Preferences())
MY_ORDER_COLUMNS = _fields(answers.MyOrder)
MY_ORDERS_BY = ("placed_at", "order_id")
MINE = both(equals(ORDERS, "customer_id"), not_null(ORDERS, "placed_at"))
MY_ORDERS = newest_first(ORDERS, MY_ORDER_COLUMNS, MINE, MY_ORDERS_BY, after=False)
MY_ORDERS_AFTER = newest_first(ORDERS, MY_ORDER_COLUMNS, MINE, MY_ORDERS_BY, after=True)
#: What a cursor of a page of one's own orders is bound to (a cursor of another listing is refused).
MY_ORDERS_CURSOR = "orders-of-the-caller"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ALIVE = sql.SQL("SELECT 1 AS ok")

#: The stock cache's hash fields an answer takes (the key is the SKU).
CACHED_LEVEL = STOCK.named(*_fields(answers.StockLevel, "sku", "source"))
(NOTIFICATION_ID,) = NOTIFICATIONS.key
USER, OCCURRED_AT, VERSION = NOTIFICATIONS.named("user_id", "occurred_at", "version")


class Queries:
    """The reads, each answered from the store that holds it."""

    def __init__(
        self,
        reads: ReadModel,
        cache: redis.Redis,
        search: Elasticsearch,
        mongo: pymongo.MongoClient[dict[str, Any]],
        settings: Settings,
    ) -> None:
        self.reads, self.cache, self.search, self.mongo, self.settings = reads, cache, search, mongo, settings
        self._prices: dict[str, tuple[float, Money]] = {}

    # For commands and the policy ----------------------------------------------------------
    def prices(self, skus: list[str]) -> dict[str, Money]:
        """Catalog prices of the known ``skus``, remembered for PRICE_TTL_S per worker."""
        now = time.monotonic()
        known = {sku: hit[1] for sku in skus if (hit := self._prices.get(sku)) and now - hit[0] < PRICE_TTL_S}
        missing = [sku for sku in skus if sku not in known]
        if missing:
            for r in self.reads.fetch(PRICES, (missing,)).rows:
                known[r["sku"]] = Money(r["price_amount"], r["currency"].strip())
                self._prices[r["sku"]] = (now, known[r["sku"]])
            if len(self._prices) > PRICE_CACHE_MAX:
                self._prices.clear()
        return known

    def order_resource(self, order_id: str) -> Resource:
        """An order as the policy sees it (its customer), read fresh: a just-placed order counts."""
        rows = self.reads.fetch(ORDER_OWNER, (order_id,), fresh=True).rows
        return Resource(customer_id=rows[0]["customer_id"], exists=True) if rows else Resource(exists=False)

    def order_to_fulfil(self, order_id: str) -> tuple[Resource, str | None]:
        """An order as the policy sees it for shipping (its customer, its SKUs' owners) and its status, read fresh.

        A SKU the products read model does not have counts as owned by no partner.
        """
        rows = self.reads.fetch(ORDER_STATE, (order_id,), fresh=True).rows
        if not rows:
            return Resource(exists=False), None
        skus = [line["sku"] for line in self.reads.fetch(ORDER_SKUS, (order_id,), fresh=True).rows]
        owned = {r["sku"]: r["owner_partner_id"] for r in self.reads.fetch(SKU_OWNERS, (skus,), fresh=True).rows}
        owners = frozenset(owned.get(sku) for sku in skus)
        return Resource(customer_id=rows[0]["customer_id"], sku_owners=owners), rows[0]["status"]

    def sku_resource(self, sku: str) -> Resource:
        """A SKU as the policy sees it (its owning partner, None when no partner owns it), read fresh."""
        rows = self.reads.fetch(SKU_OWNER, (sku,), fresh=True).rows
        return Resource(owner_partner_id=rows[0]["owner_partner_id"] if rows else None, exists=bool(rows))

    # Orders -------------------------------------------------------------------------------
    def order(self, order_id: str, wait_s: float = 0.0) -> answers.Order | None:
        """The order with its lines and history; with ``wait_s``, read fresh and waited for that long."""
        deadline = time.monotonic() + wait_s
        while True:
            order = self._order(order_id, fresh=wait_s > 0)
            if order is not None or time.monotonic() >= deadline:
                return order
            time.sleep(POLL_S)

    def _order(self, order_id: str, fresh: bool) -> answers.Order | None:
        rows = self.reads.fetch(ORDER, (order_id,), fresh=fresh).rows
        if not rows:
            return None
        lines = self.reads.fetch(LINES, (order_id,), fresh=fresh).rows
        history = self.reads.fetch(HISTORY, (order_id,), fresh=fresh).rows
        order = {**as_json(rows[0]), "lines": lines, "history": [as_json(h) for h in history]}
        return msgspec.convert({**order, "payment": self._payment(order_id, fresh)}, answers.Order)

    def _payment(self, order_id: str, fresh: bool) -> dict[str, Any] | None:
        """The order's payment (None: no outcome yet), with what its refunds came to."""
        rows = self.reads.fetch(PAYMENT, (order_id,), fresh=fresh).rows
        if not rows:
            return None
        refunded = 0
        if rows[0]["status"] == "refunded":  # only a refund makes a payment refunded, and it stays so
            refunded = sum(r["amount"] for r in self.reads.fetch(REFUNDS, (order_id,), fresh=fresh).rows)
        return {**as_json(rows[0]), "refunded_amount": refunded}

    # Products and stock -------------------------------------------------------------------
    def products(self, query: ProductQuery) -> answers.ProductPage:
        """Matches of the words (all products without any) among the filters, with facet counts (``searches``)."""
        search = searches.product_search(query)
        if search.probe is not None:  # "cheap": which kind of product is meant, and its usual price
            probed = self._search(PRODUCT_INDEX, search.probe)
            search = searches.product_search(query, searches.cheapness(probed) if probed else None)
            if search.probe is not None:  # nothing matches: the search answers that
                search = dataclasses.replace(search, probe=None)
        found = self._search(PRODUCT_INDEX, search.body)
        if found is None:  # no product was ever indexed
            return answers.ProductPage(0, [], answers.Facets(**{f: [] for f in search.facets}))
        return searches.product_page(search, found)

    def suggest(self, query: SuggestQuery) -> answers.Suggestions:
        found = self._search(PRODUCT_INDEX, searches.suggest_search(query))
        return searches.suggestions(query, found) if found is not None else answers.Suggestions([])

    def product(self, sku: str) -> answers.Product | None:
        """One product with its stock, as search holds it (None: no such product)."""
        try:
            found = self.search.get(
                index=PRODUCT_INDEX.alias(self.settings.search_prefix), id=sku, source_includes=searches.PRODUCT_SOURCE
            )
        except elasticsearch.NotFoundError:
            return None
        except (elasticsearch.ApiError, elasticsearch.TransportError) as err:
            log.warning("search: get %s: %s", sku, err)
            raise StoreUnavailable("search is unavailable", "the search store did not answer") from None
        source = found.get("_source") or {}
        return msgspec.convert(source, answers.Product) if source.get("version") is not None else None

    def orders(self, query: OrderSearchQuery) -> answers.OrderPage:
        """Support's search of orders, newest placed first (``searches``)."""
        search = searches.order_search(query)
        found = self._search(ORDER_INDEX, search.body)
        return searches.order_page(search, found) if found is not None else answers.OrderPage(0, [])

    def _search(self, index: SearchIndex, body: dict[str, Any]) -> dict[str, Any] | None:
        """The store's answer to ``body`` (None: the index does not exist yet); never the store's own error."""
        try:
            return dict(self.search.search(index=index.alias(self.settings.search_prefix), body=body))
        except elasticsearch.NotFoundError:
            return None
        except elasticsearch.BadRequestError as err:  # the request is built from validated input: say no more
            log.warning("search refused a request: %s", err)
            raise Problem(400, "invalid-search", "this search cannot be run", "change the words or filters") from None
        except (elasticsearch.ApiError, elasticsearch.TransportError) as err:
            log.warning("search: %s", err)
            raise StoreUnavailable("search is unavailable", "the search store did not answer") from None

    def stock(self, sku: str) -> answers.StockLevel | None:
        """The level from the cache, or from the read model when the cache has none or is away."""
        try:
            cached = self.cache.hgetall(STOCK_CACHE.key_for(self.settings.redis_prefix, {"sku": sku}))
        except redis.RedisError:
            cached = None
        if cached:
            level = {k.decode(): v.decode() for k, v in cached.items()}  # type: ignore[union-attr]
            return answers.StockLevel(sku=sku, **{k: int(level[k]) for k in CACHED_LEVEL}, source="cache")
        rows = self.reads.fetch(STOCK_LEVEL, (sku,)).rows
        return answers.StockLevel(**rows[0], source="database") if rows else None

    # The caller's own ---------------------------------------------------------------------
    def profile(self, user_id: str, fresh: bool) -> answers.Profile | None:
        """The account: the profile, its status, preferences, addresses and devices (None: no such user)."""
        rows = self.reads.fetch(PROFILE, (user_id,), fresh=fresh).rows
        if not rows:
            return None
        account = {
            **as_json(rows[0]),
            "status": self._part(STATUS, user_id, "active", fresh),
            "preferences": self._part(PREFERENCES, user_id, NO_PREFERENCES, fresh),
            "addresses": self._part(ADDRESSES, user_id, [], fresh),
            "devices": self._part(DEVICES, user_id, [], fresh),
        }
        return msgspec.convert(account, answers.Profile)

    def _part(self, query: sql.Composed, user_id: str, none: Any, fresh: bool) -> Any:
        """The one column a part of the account's query selects, or ``none`` when the user has no row of it."""
        rows = self.reads.fetch(query, (user_id,), fresh=fresh).rows
        return next(iter(rows[0].values())) if rows else none

    def addresses(self, user_id: str, fresh: bool = False) -> answers.AddressBook:
        rows = self.reads.fetch(ADDRESSES, (user_id,), fresh=fresh).rows
        return msgspec.convert({"items": rows[0]["addresses"] if rows else []}, answers.AddressBook)

    def address_ids(self, user_id: str) -> list[str]:
        """The ids of the user's saved addresses, read fresh (for a command on one of them)."""
        return [a.address_id for a in self.addresses(user_id, fresh=True).items]

    def device_ids(self, user_id: str) -> list[str]:
        """The ids of the user's push devices, read fresh."""
        rows = self.reads.fetch(DEVICES, (user_id,), fresh=True).rows
        return [d["device_id"] for d in rows[0]["devices"]] if rows else []

    def orders_of(self, user_id: str, query: MyOrdersQuery) -> answers.MyOrderPage:
        """The user's orders from the replica, newest placed first, one page (``cursor``: after the last one seen)."""
        params: tuple[Any, ...]
        if query.cursor is msgspec.UNSET:
            statement, params = MY_ORDERS, (user_id, query.size + 1)
        else:
            micros, order_id = searches.decode_cursor(query.cursor, MY_ORDERS_CURSOR, (int, str))
            placed = EPOCH + timedelta(microseconds=micros)
            statement, params = MY_ORDERS_AFTER, (user_id, placed, order_id, query.size + 1)
        rows = self.reads.fetch(statement, params).rows
        page = rows[: query.size]
        cursor = None
        if len(rows) > query.size:
            last = page[-1]
            micros = (last["placed_at"] - EPOCH) // timedelta(microseconds=1)
            cursor = searches.encode_cursor(MY_ORDERS_CURSOR, [micros, last["order_id"]])
        return answers.MyOrderPage([msgspec.convert(as_json(r), answers.MyOrder) for r in page], cursor)

    def notifications_of(self, user_id: str, limit: int) -> answers.NotificationPage:
        """The user's newest ``limit`` notifications, newest first."""
        try:
            docs = (
                self.mongo[self.settings.mongo_database][NOTIFICATION_DOCS.name]
                .find({USER: user_id}, {VERSION: 0})
                .sort(OCCURRED_AT, pymongo.DESCENDING)
                .limit(limit)
            )
            items = [{NOTIFICATION_ID: d.pop("_id"), **d} for d in docs]
        except pymongo.errors.PyMongoError as err:
            raise StoreUnavailable("notifications are unavailable", str(err)) from None
        return answers.NotificationPage([msgspec.convert(as_json(i), answers.Notification) for i in items])

    # The service --------------------------------------------------------------------------
    def readiness(self) -> answers.Readiness:
        """Whether the stores every request needs answer: Redis (limits, sessions) and PostgreSQL."""
        checks: dict[str, str] = {}
        try:
            self.cache.ping()
            checks["redis"] = "ok"
        except redis.RedisError as err:
            checks["redis"] = f"down: {err}"
        try:
            self.reads.fetch(ALIVE)
            checks["postgres"] = "ok"
        except ReadModelUnavailable as err:
            checks["postgres"] = f"down: {err}"
        if self.settings.rate_limit_redis_down == "open" and checks["redis"] != "ok":
            checks["redis"] += " (SHOP_RATE_LIMIT_REDIS_DOWN=open: requests go on, unchecked by rate limits)"
            ready = checks["postgres"] == "ok"
        else:
            ready = all(v == "ok" for v in checks.values())
        return answers.Readiness("ready" if ready else "not ready", checks)
