"""The authorization policy as a table of (principal, action, resource) -> decision."""

from __future__ import annotations

import pytest

from ingress.auth.tokens import Principal
from ingress.policy import ROLES, Decision, Resource, decide

ANN = Principal("ann", "user", frozenset({"customer"}))
BOB = Principal("bob", "user", frozenset({"customer"}))
SUE = Principal("sue", "user", frozenset({"support"}))
ROOT = Principal("root", "user", frozenset({"admin"}))
ACME = Principal("acme", "partner", frozenset({"partner"}))
ANNS_ORDER = Resource(customer_id="ann")
ACME_SKU = Resource(owner_partner_id="acme")
OTHER_SKU = Resource(owner_partner_id="globex")
FREE_SKU = Resource(owner_partner_id=None)
A, F, H = Decision.ALLOW, Decision.FORBID, Decision.HIDE

TABLE = [
    (ANN, "order.place", None, A),
    (ANN, "order.read", ANNS_ORDER, A),
    (ANN, "order.cancel", ANNS_ORDER, A),
    (BOB, "order.read", ANNS_ORDER, H),
    (BOB, "order.cancel", ANNS_ORDER, H),
    (BOB, "order.refund", ANNS_ORDER, H),
    (ANN, "order.read", Resource(exists=False), H),
    (SUE, "order.read", ANNS_ORDER, A),
    (SUE, "order.cancel", ANNS_ORDER, F),
    (SUE, "order.refund", ANNS_ORDER, F),
    (ROOT, "order.cancel", ANNS_ORDER, A),
    (ACME, "order.read", ANNS_ORDER, H),
    (ACME, "stock.adjust", ACME_SKU, A),
    (ACME, "stock.adjust", OTHER_SKU, F),
    (ACME, "stock.adjust", FREE_SKU, F),
    (ACME, "product.upsert", ACME_SKU, A),
    (ACME, "product.upsert", OTHER_SKU, F),
    (ACME, "product.upsert", FREE_SKU, A),
    (ANN, "stock.adjust", ACME_SKU, F),
    (ANN, "product.upsert", FREE_SKU, F),
    (ROOT, "stock.adjust", OTHER_SKU, A),
    (ANN, "product.search", None, A),
    (ACME, "profile.read", None, F),
    (Principal("x", "user", frozenset()), "product.search", None, F),
]


@pytest.mark.parametrize(("principal", "action", "resource", "expected"), TABLE)
def test_policy_table(principal: Principal, action: str, resource: Resource | None, expected: Decision) -> None:
    assert decide(principal, action, resource) is expected  # type: ignore[arg-type]


def test_every_action_is_granted_to_some_role() -> None:
    granted = set().union(*ROLES.values())
    assert {action for _, action, _, _ in TABLE} <= granted
