"""Stock: read a SKU's level and adjust it.

``GET /v1/stock/{sku}`` (the Redis cache, falling back to PostgreSQL),
``POST /v1/stock/{sku}/adjustments`` (partners for their own SKUs, admins).
"""

from __future__ import annotations

import falcon

from ingress import answers
from ingress.auth.tokens import Principal
from ingress.bodies import known_sku, read_body
from ingress.commands import Call, Commands
from ingress.pending import PendingOwners, not_caught_up
from ingress.policy import authorize
from ingress.problems import Problem
from ingress.queries import Queries
from ingress.schemas import StockAdjustmentRequest
from topology.messages import AdjustStock
from topology.processes import GET_STOCK
from topology.settings import Settings
from topology.topics import INVENTORY_COMMANDS


class StockResource:
    def __init__(self, commands: Commands, queries: Queries, settings: Settings, pending: PendingOwners) -> None:
        self.commands, self.queries, self.settings, self.pending = commands, queries, settings, pending

    def on_get_one(self, req: falcon.Request, resp: falcon.Response, sku: str) -> None:
        authorize(req.context.principal, "stock.read")
        level = self.queries.stock(known_sku(sku))
        if level is None:
            raise Problem(404, "not-found", "not found")
        answers.write(resp, level)

    def on_post_adjustments(self, req: falcon.Request, resp: falcon.Response, sku: str) -> None:
        principal: Principal = req.context.principal
        body, raw = read_body(req, StockAdjustmentRequest, self.settings.max_body_bytes)
        resource = self.queries.sku_resource(known_sku(sku))
        if not resource.exists and principal.kind == "partner" and self.pending.owner("sku", sku) == principal.subject:
            raise not_caught_up("sku", sku)  # its product is on its way: the read model will say this partner owns it
        authorize(principal, "stock.adjust", resource)
        partner_id = principal.subject if principal.kind == "partner" else None  # inventory checks it owns the SKU
        command = AdjustStock(sku=sku, delta=body.delta, reason=body.reason, partner_id=partner_id)
        sent = self.commands.send(Call.of(req, raw), INVENTORY_COMMANDS, sku, command, GET_STOCK.path.format(sku=sku))
        answers.write(resp, sent.answer, sent.status, sent.headers)
