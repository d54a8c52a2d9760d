"""The authorization policy as a table of (principal, action, resource) -> decision.

``test_policy_table`` keeps the cases worth reading; ``test_every_combination`` walks every
role, every set of partner scopes, every action and every kind of resource and owner
against ``expected``, the rules of docs/ingress.md written out again, action by action,
without the policy's tables.
"""

from __future__ import annotations

from itertools import chain, combinations, product
from typing import get_args

import pytest

from ingress.auth.accounts import SCOPES as GRANTABLE
from ingress.auth.tokens import Principal
from ingress.policy import ANONYMOUS, ROLES, SCOPES, Action, Decision, Resource, decide

ALL_SCOPES = frozenset(GRANTABLE)
ANN = Principal("ann", "user", frozenset({"customer"}))
BOB = Principal("bob", "user", frozenset({"customer"}))
SUE = Principal("sue", "user", frozenset({"support"}))
ROOT = Principal("root", "user", frozenset({"admin"}))
ACME = Principal("acme", "partner", frozenset({"partner"}), ALL_SCOPES)
ACME_CATALOG = Principal("acme", "partner", frozenset({"partner"}), frozenset({"catalog:write"}))
ACME_STOCK = Principal("acme", "partner", frozenset({"partner"}), frozenset({"stock:write"}))
ANNS_ORDER = Resource(customer_id="ann")
ANNS_ACCOUNT = Resource(user_id="ann")
ANNS_METHOD = Resource(customer_id="ann")  # a saved payment method of hers
ACME_SKU = Resource(owner_partner_id="acme")
OTHER_SKU = Resource(owner_partner_id="globex")
FREE_SKU = Resource(owner_partner_id=None)
ACME_GOODS = Resource(customer_id="ann", sku_owners=frozenset({"acme"}))
MIXED_GOODS = Resource(customer_id="ann", sku_owners=frozenset({"acme", "globex"}))
PARTLY_FREE_GOODS = Resource(customer_id="ann", sku_owners=frozenset({"acme", None}))
GLOBEX_GOODS = Resource(customer_id="ann", sku_owners=frozenset({"globex"}))
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
    (ACME_CATALOG, "product.upsert", ACME_SKU, A),
    (ACME_CATALOG, "stock.adjust", ACME_SKU, F),  # a catalog-only client adjusts no stock
    (ACME_STOCK, "stock.adjust", ACME_SKU, A),
    (ACME_STOCK, "product.upsert", FREE_SKU, F),
    (ACME_STOCK, "product.search", None, A),  # reads need no scope
    (ANN, "stock.adjust", ACME_SKU, F),
    (ANN, "product.upsert", FREE_SKU, F),
    (ROOT, "stock.adjust", OTHER_SKU, A),
    (ANN, "product.search", None, A),
    (ACME, "profile.read", None, F),
    (Principal("x", "user", frozenset()), "product.search", None, F),
    (ANONYMOUS, "product.search", None, A),
    (ANONYMOUS, "product.read", None, A),
    (ANONYMOUS, "order.search", None, F),
    (ANONYMOUS, "order.read", ANNS_ORDER, H),
    (ANONYMOUS, "stock.read", None, F),
    (SUE, "order.search", None, A),
    (ROOT, "order.search", None, A),
    (ANN, "order.search", None, F),  # a customer reads her own orders one by one
    (ACME, "order.search", None, F),
    (ACME, "order.fulfil", ACME_GOODS, A),
    (ACME, "order.fulfil", MIXED_GOODS, F),  # a partner ships only an order of its own goods alone
    (ACME, "order.fulfil", PARTLY_FREE_GOODS, F),
    (ACME, "order.fulfil", GLOBEX_GOODS, H),  # none of its goods: it learns nothing of the order
    (ACME, "order.fulfil", Resource(exists=False), H),
    (ACME_CATALOG, "order.fulfil", ACME_GOODS, F),  # without the scope fulfilment:write
    (ROOT, "order.fulfil", MIXED_GOODS, A),
    (ROOT, "order.fulfil", Resource(exists=False), A),  # the route answers an admin 404 itself
    (ANN, "order.fulfil", ACME_GOODS, F),  # not even her own order
    (SUE, "order.fulfil", ACME_GOODS, F),
    (ANONYMOUS, "order.fulfil", ACME_GOODS, F),
    (ANN, "preferences.update", None, A),  # the caller's own account: /v1/users/me
    (ANN, "addresses.manage", None, A),
    (ANN, "devices.manage", None, A),
    (ANN, "order.list", None, A),
    (SUE, "addresses.manage", None, F),  # support reads accounts, it changes none
    (ROOT, "preferences.update", None, F),  # nor do admins: a staff account is no shopper's
    (ACME, "order.list", None, F),
    (ANN, "account.read", ANNS_ACCOUNT, A),
    (BOB, "account.read", ANNS_ACCOUNT, H),  # another customer learns nothing of it
    (SUE, "account.read", ANNS_ACCOUNT, A),
    (SUE, "account.read", Resource(user_id="ann", exists=False), A),  # the route answers support 404 itself
    (ROOT, "account.read", ANNS_ACCOUNT, A),
    (ACME, "account.read", ANNS_ACCOUNT, F),
    (ANONYMOUS, "account.read", ANNS_ACCOUNT, F),
    (ANN, "payment_methods.read", None, A),  # her own vault
    (ANN, "payment_methods.manage", ANNS_METHOD, A),
    (BOB, "payment_methods.manage", ANNS_METHOD, H),  # another's saved card is not found
    (BOB, "payment_methods.read", ANNS_METHOD, H),  # so it pays none of his orders
    (ANN, "payment_methods.manage", Resource(exists=False), H),
    (ANN, "payment_methods.read", Resource(customer_id=None), H),  # a method no user holds
    (SUE, "payment_methods.read", ANNS_METHOD, F),  # only its owner, not support
    (ROOT, "payment_methods.manage", ANNS_METHOD, F),  # nor an admin
    (ACME, "payment_methods.read", None, F),
    (ANONYMOUS, "payment_methods.read", None, F),
]


@pytest.mark.parametrize(("principal", "action", "resource", "expected"), TABLE)
def test_policy_table(principal: Principal, action: str, resource: Resource | None, expected: Decision) -> None:
    assert decide(principal, action, resource) is expected  # type: ignore[arg-type]


def test_every_action_is_granted_to_some_role() -> None:
    granted = set().union(*ROLES.values())
    assert {action for _, action, _, _ in TABLE} <= granted
    assert granted == set(get_args(Action))


def test_the_scopes_the_policy_asks_for_are_the_ones_clients_are_granted() -> None:
    assert set(SCOPES.values()) == set(GRANTABLE)
    assert set(SCOPES) <= set(get_args(Action))


ME = "me"
#: Each kind of resource an action may be asked about, by what it says of its owner.
RESOURCES: dict[str, Resource | None] = {
    "none": None,
    "my order": Resource(customer_id=ME),
    "someone's order": Resource(customer_id="other"),
    "no such order": Resource(exists=False),
    "my sku": Resource(owner_partner_id=ME),
    "someone's sku": Resource(owner_partner_id="other"),
    "unowned sku": Resource(owner_partner_id=None),
    "no such sku": Resource(owner_partner_id=None, exists=False),
    "an order of my skus": Resource(customer_id="other", sku_owners=frozenset({ME})),
    "an order of my skus and others'": Resource(customer_id="other", sku_owners=frozenset({ME, "other"})),
    "an order of my skus and unowned ones": Resource(customer_id="other", sku_owners=frozenset({ME, None})),
    "an order of others' skus": Resource(customer_id="other", sku_owners=frozenset({"other"})),
    "my order of my skus": Resource(customer_id=ME, sku_owners=frozenset({ME})),
    "my account": Resource(user_id=ME),
    "someone's account": Resource(user_id="other"),
    "no such account": Resource(user_id=ME, exists=False),
}
ROLE_NAMES = ("customer", "support", "partner", "admin", "anonymous", None)
SCOPE_SETS = [
    frozenset(s) for s in chain.from_iterable(combinations(sorted(GRANTABLE), n) for n in range(len(GRANTABLE) + 1))
]
ORDER_OWN = ("order.read", "order.cancel", "order.refund")
#: What a customer changes of their own account (``/v1/users/me``), which no staff role may.
ACCOUNT_CHANGES = ("profile.update", "preferences.update", "addresses.manage", "devices.manage")
METHODS = ("payment_methods.read", "payment_methods.manage")


def expected(role: str | None, scopes: frozenset[str], action: str, resource: Resource | None) -> Decision:
    """What docs/ingress.md says, one role at a time."""
    exists = resource is not None and resource.exists
    mine = exists and resource is not None and resource.customer_id == ME
    sku_owner = resource.owner_partner_id if resource is not None else None
    goods_owners = resource.sku_owners if resource is not None and exists else frozenset()
    my_account = exists and resource is not None and resource.user_id == ME
    if role == "admin":
        return F if action in ("order.place", *ACCOUNT_CHANGES, *METHODS) else A
    if role == "customer":
        if action in ORDER_OWN:
            return A if mine else H  # someone else's order is not found
        if action == "account.read":
            return A if my_account else H  # and nor is someone else's account
        if action in METHODS:  # her own vault; someone else's method, or one no user holds, is not found
            return A if resource is None or mine else H
        everyday = ("order.place", "product.search", "product.read", "stock.read", "profile.read", "order.list")
        return A if action in (*everyday, *ACCOUNT_CHANGES, "notifications.read") else F
    if role == "support":
        if action == "order.read":
            return A if exists else H
        reads = ("order.search", "product.search", "product.read", "stock.read", "profile.read", "notifications.read")
        return A if action in (*reads, "order.list", "account.read") else F
    if role == "partner":
        if action in ORDER_OWN:
            return H  # a partner reads no orders, so it learns nothing of them
        if action in ("product.search", "product.read", "stock.read"):
            return A
        if action == "product.upsert":
            return A if "catalog:write" in scopes and sku_owner in (None, ME) else F
        if action == "stock.adjust":
            return A if "stock:write" in scopes and sku_owner == ME else F
        if action == "order.fulfil":  # only an order all of whose SKUs it owns; none of them: not found
            if "fulfilment:write" not in scopes:
                return F
            return A if goods_owners == {ME} else F if ME in goods_owners else H
        return F
    if role == "anonymous":  # no token: browsing the catalog only
        return A if action in ("product.search", "product.read") else H if action in ORDER_OWN else F
    return H if action in ORDER_OWN else F


def test_every_combination_of_role_scopes_action_and_owner() -> None:
    checked = 0
    wrong = []
    for role, scopes, action, (label, resource) in product(ROLE_NAMES, SCOPE_SETS, get_args(Action), RESOURCES.items()):
        kind = "partner" if role == "partner" else "user"
        principal = Principal(ME, kind, frozenset({role}) if role else frozenset(), scopes)  # type: ignore[arg-type]
        got, want = decide(principal, action, resource), expected(role, scopes, action, resource)
        checked += 1
        if got is not want:
            wrong.append((role, sorted(scopes), action, label, got.value, want.value))
    assert checked == len(ROLE_NAMES) * 2 ** len(GRANTABLE) * len(get_args(Action)) * len(RESOURCES)
    assert not wrong, wrong[:20]
