"""Products, stock and the caller's own profile and notifications: the other commands and queries.

Writes: ``PUT /v1/products/{sku}`` (partners for their own or new SKUs, admins),
``POST /v1/stock/{sku}/adjustments`` (partners for their own SKUs, admins),
``PATCH /v1/users/me`` and ``POST /v1/orders/{id}/refunds`` (the order's customer).
Reads: ``GET /v1/products`` (Elasticsearch: text, filters, facets), ``GET /v1/stock/{sku}``
(Redis, falling back to PostgreSQL), ``GET /v1/users/me`` (replica, fresh on ``?wait``),
``GET /v1/users/me/notifications`` (MongoDB).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import elasticsearch
import falcon
import pymongo
import redis
from elasticsearch import Elasticsearch

from ingress.auth.tokens import Principal
from ingress.edge import Commands, authorize, order_resource, read_body, sku_resource
from ingress.problems import Problem
from ingress.readmodel import ReadModel, as_json
from ingress.schemas import Accepted, ProductRequest, ProfileRequest, RefundRequest, StockAdjustmentRequest
from topology.messages import AdjustStock, Money, RequestRefund, UpdateProfile, UpsertProduct
from topology.settings import Settings
from topology.topics import CATALOG_COMMANDS, INVENTORY_COMMANDS, ORDER_COMMANDS, USER_COMMANDS

SKU_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
FACETS = ("brand", "category", "tags")


def _sku(sku: str) -> str:
    if not SKU_PATTERN.fullmatch(sku):
        raise Problem(404, "not-found", "not found")
    return sku


class ProductsResource:
    def __init__(self, commands: Commands, reads: ReadModel, search: Elasticsearch, settings: Settings) -> None:
        self.commands, self.reads, self.search, self.settings = commands, reads, search, settings

    def on_put_one(self, req: falcon.Request, resp: falcon.Response, sku: str) -> None:
        principal: Principal = req.context.principal
        body, raw = read_body(req, ProductRequest, self.settings.max_body_bytes)
        authorize(principal, "product.upsert", sku_resource(self.reads, _sku(sku)))
        owner = principal.subject if principal.kind == "partner" else None
        command = UpsertProduct(
            sku=sku,
            title=body.title,
            description=body.description,
            brand=body.brand,
            category=body.category,
            tags=list(body.tags),
            price=Money(body.price_amount, body.currency),
            owner_partner_id=owner,
        )
        self.commands.send(
            req, resp, raw, CATALOG_COMMANDS, sku, command, Accepted(uuid.uuid4().hex, f"/v1/products?sku={sku}")
        )

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        authorize(req.context.principal, "product.search")
        text = req.get_param("q", default="") or ""
        if len(text) > 200:
            raise Problem(400, "invalid-query", "q is at most 200 characters")
        size = req.get_param_as_int("size", min_value=1, max_value=100, default=20)
        offset = req.get_param_as_int("from", min_value=0, max_value=10_000, default=0)
        filters: list[dict[str, Any]] = []
        for field in FACETS:
            value = req.get_param(field)
            if value is not None:
                if len(value) > 80:
                    raise Problem(400, "invalid-query", f"{field} is at most 80 characters")
                filters.append({"term": {field: value}})
        low = req.get_param_as_int("min_price", min_value=0)
        high = req.get_param_as_int("max_price", min_value=0)
        if low is not None or high is not None:
            filters.append(
                {"range": {"price_amount": {k: v for k, v in (("gte", low), ("lte", high)) if v is not None}}}
            )
        must: list[dict[str, Any]] = [{"match": {"title": text}}] if text else [{"match_all": {}}]
        try:
            found = self.search.search(
                index=f"{self.settings.search_prefix}products",
                query={"bool": {"must": must, "filter": filters}},
                aggs={field: {"terms": {"field": field, "size": 20}} for field in FACETS},
                size=size,
                from_=offset,
            )
        except elasticsearch.NotFoundError:
            resp.media = {"total": 0, "items": [], "facets": {f: [] for f in FACETS}}
            return
        except (elasticsearch.ConnectionError, elasticsearch.ApiError) as err:
            raise Problem(503, "unavailable", "search is unavailable", str(err), {"Retry-After": "1"}) from None
        facets = {
            f: [{"value": b["key"], "count": b["doc_count"]} for b in found["aggregations"][f]["buckets"]]
            for f in FACETS
        }
        items = [h["_source"] for h in found["hits"]["hits"]]
        resp.media = {"total": found["hits"]["total"]["value"], "items": items, "facets": facets}


class StockResource:
    def __init__(self, commands: Commands, reads: ReadModel, cache: redis.Redis, settings: Settings) -> None:
        self.commands, self.reads, self.cache, self.settings = commands, reads, cache, settings

    def on_post_adjust(self, req: falcon.Request, resp: falcon.Response, sku: str) -> None:
        principal: Principal = req.context.principal
        body, raw = read_body(req, StockAdjustmentRequest, self.settings.max_body_bytes)
        authorize(principal, "stock.adjust", sku_resource(self.reads, _sku(sku)))
        command = AdjustStock(sku=sku, delta=body.delta, reason=body.reason)
        self.commands.send(
            req, resp, raw, INVENTORY_COMMANDS, sku, command, Accepted(uuid.uuid4().hex, f"/v1/stock/{sku}")
        )

    def on_get_one(self, req: falcon.Request, resp: falcon.Response, sku: str) -> None:
        authorize(req.context.principal, "stock.read")
        level: dict[str, Any] | None = None
        try:
            cached = self.cache.hgetall(f"{self.settings.redis_prefix}stock:{_sku(sku)}")
            if cached:
                level = {k.decode(): v.decode() for k, v in cached.items()}  # type: ignore[union-attr]
                level = {"sku": sku, **{k: int(level[k]) for k in ("total", "reserved", "available", "version")}}
                level["source"] = "cache"
        except redis.RedisError:
            level = None
        if level is None:
            rows = self.reads.fetch(
                "SELECT sku, total, reserved, available, version FROM stock WHERE sku = %s", (sku,)
            ).rows
            if not rows:
                raise Problem(404, "not-found", "not found")
            level = {**rows[0], "source": "database"}
        resp.media = level


class MeResource:
    def __init__(
        self, commands: Commands, reads: ReadModel, mongo: pymongo.MongoClient[dict[str, Any]], settings: Settings
    ) -> None:
        self.commands, self.reads, self.mongo, self.settings = commands, reads, mongo, settings

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        principal: Principal = req.context.principal
        authorize(principal, "profile.read")
        fresh = bool(req.get_param_as_float("wait", min_value=0))
        rows = self.reads.fetch(
            "SELECT user_id, email, name, phone, registered_at, updated_at, version FROM users WHERE user_id = %s",
            (principal.subject,),
            fresh=fresh,
        ).rows
        if not rows:
            raise Problem(404, "not-found", "not found")
        resp.media = as_json(rows[0])

    def on_patch(self, req: falcon.Request, resp: falcon.Response) -> None:
        principal: Principal = req.context.principal
        authorize(principal, "profile.update")
        body, raw = read_body(req, ProfileRequest, self.settings.max_body_bytes)
        if body.name is None and body.phone is None:
            raise Problem(422, "invalid-body", "nothing to update", "send name, phone or both")
        command = UpdateProfile(user_id=principal.subject, name=body.name, phone=body.phone)
        answer = Accepted(uuid.uuid4().hex, "/v1/users/me")
        self.commands.send(req, resp, raw, USER_COMMANDS, principal.subject, command, answer)

    def on_get_notifications(self, req: falcon.Request, resp: falcon.Response) -> None:
        principal: Principal = req.context.principal
        authorize(principal, "notifications.read")
        limit = req.get_param_as_int("limit", min_value=1, max_value=100, default=20)
        try:
            docs = (
                self.mongo[self.settings.mongo_database]
                .notifications.find({"user_id": principal.subject}, {"version": 0})
                .sort("occurred_at", pymongo.DESCENDING)
                .limit(limit)
            )
            items = [{"notification_id": d.pop("_id"), **d} for d in docs]
        except pymongo.errors.PyMongoError as err:
            raise Problem(503, "unavailable", "notifications are unavailable", str(err), {"Retry-After": "1"}) from None
        resp.media = {"items": [as_json(i) for i in items]}


class RefundsResource:
    def __init__(self, commands: Commands, reads: ReadModel, settings: Settings) -> None:
        self.commands, self.reads, self.settings = commands, reads, settings

    def on_post(self, req: falcon.Request, resp: falcon.Response, order_id: str) -> None:
        principal: Principal = req.context.principal
        body, raw = read_body(req, RefundRequest, self.settings.max_body_bytes)
        authorize(principal, "order.refund", order_resource(self.reads, order_id))
        command = RequestRefund(order_id=order_id, amount=Money(body.amount, body.currency), reason=body.reason)
        answer = Accepted(uuid.uuid4().hex, f"/v1/orders/{order_id}", order_id)
        self.commands.send(req, resp, raw, ORDER_COMMANDS, order_id, command, answer)
