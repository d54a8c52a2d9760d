"""Products: search them, complete what a shopper types, read one, add or update one.

``GET /v1/products`` (the search index: words, filters, facets, order, pages),
``GET /v1/products/suggest`` (completions), ``GET /v1/products/{sku}`` (one product with its
stock): open to anyone, a token or none; an answer to a caller without a token may be kept by
shared caches for a short while, and every answer carries an ETag (``If-None-Match``: 304).
``PUT /v1/products/{sku}`` (partners for their own SKUs or for SKUs no partner owns yet, admins).
"""

from __future__ import annotations

import hashlib

import falcon
import msgspec

from ingress import answers
from ingress.auth.tokens import Principal
from ingress.bodies import known_sku, read_body, read_query
from ingress.commands import Call, Commands
from ingress.pending import PendingOwners, not_caught_up
from ingress.policy import ANONYMOUS, authorize, caller
from ingress.problems import Problem
from ingress.queries import Queries
from ingress.schemas import ProductQuery, ProductRequest, SuggestQuery
from topology.messages import Money, UpsertProduct
from topology.processes import GET_PRODUCT
from topology.settings import Settings
from topology.topics import CATALOG_COMMANDS

#: The longest ``If-None-Match`` taken (a client holds a handful of ETags of 24 characters, not more).
MAX_IF_NONE_MATCH = 1024


class ProductsResource:
    def __init__(self, commands: Commands, queries: Queries, settings: Settings, pending: PendingOwners) -> None:
        self.commands, self.queries, self.settings, self.pending = commands, queries, settings, pending

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        authorize(caller(req), "product.search")
        self._catalog_answer(req, resp, self.queries.products(read_query(req, ProductQuery)))

    def on_get_suggest(self, req: falcon.Request, resp: falcon.Response) -> None:
        authorize(caller(req), "product.search")
        self._catalog_answer(req, resp, self.queries.suggest(read_query(req, SuggestQuery)))

    def on_get_one(self, req: falcon.Request, resp: falcon.Response, sku: str) -> None:
        authorize(caller(req), "product.read")
        product = self.queries.product(known_sku(sku))
        if product is None:
            raise Problem(404, "not-found", "not found")
        self._catalog_answer(req, resp, product)

    def _catalog_answer(self, req: falcon.Request, resp: falcon.Response, answer: msgspec.Struct) -> None:
        """The answer with its ETag (304 when the client holds it); cacheable by anyone when the caller has no token."""
        body = answers.ENCODER.encode(answer)
        etag = hashlib.blake2b(body, digest_size=12).hexdigest()
        resp.etag = etag
        if caller(req) is ANONYMOUS:
            resp.cache_control = ["public", f"max-age={self.settings.catalog_cache_max_age_s}"]
        held = req.get_header("If-None-Match")
        if held is not None and len(held) > MAX_IF_NONE_MATCH:
            raise Problem(400, "invalid-if-none-match", f"If-None-Match must be at most {MAX_IF_NONE_MATCH} characters")
        if any(tag in (etag, "*") for tag in req.if_none_match or ()):
            resp.status = falcon.HTTP_304
            return
        resp.content_type = answers.JSON
        resp.data = body

    def on_put_one(self, req: falcon.Request, resp: falcon.Response, sku: str) -> None:
        principal: Principal = req.context.principal
        body, raw = read_body(req, ProductRequest, self.settings.max_body_bytes)
        resource = self.queries.sku_resource(known_sku(sku))
        claim = principal.kind == "partner" and not resource.exists
        if claim and self.pending.owner("sku", sku) not in (None, principal.subject):
            raise not_caught_up("sku", sku)  # another partner's claim is on its way: the read model will say whose
        authorize(principal, "product.upsert", resource)
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
        sent = self.commands.send(Call.of(req, raw), CATALOG_COMMANDS, sku, command, GET_PRODUCT.path.format(sku=sku))
        if claim:
            self.pending.record("sku", sku, principal.subject)
        answers.write(resp, sent.answer, sent.status, sent.headers)
