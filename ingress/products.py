"""Products: search them (text, filters, facets) and add or update one.

``GET /v1/products`` (the search index), ``PUT /v1/products/{sku}`` (partners for their
own SKUs or for SKUs no partner owns yet, admins).
"""

from __future__ import annotations

import falcon

from ingress import answers
from ingress.auth.tokens import Principal
from ingress.bodies import known_sku, read_body, read_query
from ingress.commands import Call, Commands
from ingress.pending import PendingOwners, not_caught_up
from ingress.policy import authorize
from ingress.queries import Queries
from ingress.schemas import ProductQuery, ProductRequest
from topology.messages import Money, UpsertProduct
from topology.processes import SEARCH_PRODUCTS
from topology.settings import Settings
from topology.topics import CATALOG_COMMANDS


class ProductsResource:
    def __init__(self, commands: Commands, queries: Queries, settings: Settings, pending: PendingOwners) -> None:
        self.commands, self.queries, self.settings, self.pending = commands, queries, settings, pending

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        authorize(req.context.principal, "product.search")
        answers.write(resp, self.queries.products(read_query(req, ProductQuery)))

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
        sent = self.commands.send(
            Call.of(req, raw), CATALOG_COMMANDS, sku, command, f"{SEARCH_PRODUCTS.path}?sku={sku}"
        )
        if claim:
            self.pending.record("sku", sku, principal.subject)
        answers.write(resp, sent.answer, sent.status, sent.headers)
