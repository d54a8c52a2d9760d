"""Who may do what: roles (RBAC) plus attribute rules (ABAC), in one table-driven function.

``decide(principal, action, resource)`` answers ALLOW, FORBID (403) or HIDE (404: the
caller may not even learn that the resource exists, e.g. a customer asking for someone
else's order or account); ``authorize`` turns the decision into that problem. Resources carry
the attributes the rules need: an order's customer and the partners owning its SKUs, a SKU's
owning partner, the user whose saved payment method it is, an account's user. What a customer
does to their own account (``/v1/users/me``: preferences, addresses, devices, their orders) is
theirs by the path: only the role decides. A partner's token carries OAuth2 scopes: an action
that names a scope (``SCOPES``) needs it, whatever the role allows. A caller without a token is
``ANONYMOUS``: the operations whose action its role allows (browsing the catalog) are open to
anyone, with a rate limit of their own per client address; every other operation needs a token.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

from ingress.auth.tokens import Principal
from ingress.problems import Problem

Action = Literal[
    "order.place",
    "order.read",
    "order.cancel",
    "order.refund",
    "order.fulfil",
    "product.upsert",
    "product.search",
    "product.read",
    "order.search",
    "stock.adjust",
    "stock.read",
    "profile.read",
    "profile.update",
    "preferences.update",
    "addresses.manage",
    "devices.manage",
    "order.list",
    "account.read",
    "notifications.read",
    "payment_methods.read",
    "payment_methods.manage",
]


class Decision(Enum):
    ALLOW = "allow"
    FORBID = "forbid"
    HIDE = "hide"


@dataclass(frozen=True)
class Resource:
    """The attributes of what is acted on (None where they do not apply or are not known yet)."""

    customer_id: str | None = None  # an order's owner; a saved payment method's user
    owner_partner_id: str | None = None  # a SKU's owner; None for a SKU no partner owns
    sku_owners: frozenset[str | None] = frozenset()  # an order's SKUs' owners (None: a SKU no partner owns)
    user_id: str | None = None  # an account's user
    exists: bool = True


#: Role -> actions it may take at all (the attribute rules below narrow them).
ROLES: dict[str, frozenset[Action]] = {
    "anonymous": frozenset({"product.search", "product.read"}),
    "customer": frozenset(
        {
            "order.place",
            "order.read",
            "order.cancel",
            "order.refund",
            "product.search",
            "product.read",
            "stock.read",
            "profile.read",
            "profile.update",
            "preferences.update",
            "addresses.manage",
            "devices.manage",
            "order.list",
            "account.read",
            "notifications.read",
            "payment_methods.read",
            "payment_methods.manage",
        }
    ),
    "partner": frozenset(
        {"order.fulfil", "product.upsert", "product.search", "product.read", "stock.adjust", "stock.read"}
    ),
    "support": frozenset(
        {
            "order.read",
            "order.search",
            "product.search",
            "product.read",
            "stock.read",
            "profile.read",
            "order.list",
            "account.read",
            "notifications.read",
        }
    ),
    "admin": frozenset(
        {
            "order.read",
            "order.cancel",
            "order.refund",
            "order.fulfil",
            "order.search",
            "product.upsert",
            "product.search",
            "product.read",
            "stock.adjust",
            "stock.read",
            "profile.read",
            "order.list",
            "account.read",
            "notifications.read",
        }
    ),
}
#: Who calls without a token.
ANONYMOUS = Principal("anonymous", "user", frozenset({"anonymous"}))


def caller(req: object) -> Principal:
    """The request's principal (``Authenticate`` verified its token), or ``ANONYMOUS`` when it sent none."""
    return getattr(getattr(req, "context", None), "principal", None) or ANONYMOUS


def open_to_anyone(action: Action) -> bool:
    """Whether a caller without a token may take ``action`` (the operation then takes no token)."""
    return action in ROLES["anonymous"]


OWN_ORDER_ACTIONS = frozenset({"order.read", "order.cancel", "order.refund"})
#: What a partner may do only to the SKUs it owns (or, upserting, to one no partner owns yet).
OWN_SKU_ACTIONS = frozenset({"product.upsert", "stock.adjust"})
#: What a partner may do only to an order all of whose SKUs it owns (shipping and delivering it).
OWN_GOODS_ACTIONS = frozenset({"order.fulfil"})
#: What a customer may do only to their own account (support and admins: to any).
OWN_ACCOUNT_ACTIONS = frozenset({"account.read"})
#: What a user may do only with their own saved payment methods (without a resource: their own vault).
OWN_METHOD_ACTIONS = frozenset({"payment_methods.read", "payment_methods.manage"})
ATTRIBUTE_ACTIONS = OWN_ORDER_ACTIONS | OWN_SKU_ACTIONS | OWN_GOODS_ACTIONS | OWN_ACCOUNT_ACTIONS | OWN_METHOD_ACTIONS
#: Action -> the scope a partner's token needs for it (``ingress.auth.accounts.SCOPES``); reads need none.
SCOPES: dict[Action, str] = {
    "product.upsert": "catalog:write",
    "stock.adjust": "stock:write",
    "order.place": "orders:write",
    "order.fulfil": "fulfilment:write",
}


def decide(principal: Principal, action: Action, resource: Resource | None = None) -> Decision:
    roles = [role for role in principal.roles if action in ROLES.get(role, frozenset())]
    if not roles:
        # Someone who may not read orders learns nothing about which exist; someone who may is told no.
        reads_orders = any("order.read" in ROLES.get(role, frozenset()) for role in principal.roles)
        return Decision.HIDE if action in OWN_ORDER_ACTIONS and not reads_orders else Decision.FORBID
    scope = SCOPES.get(action)
    if principal.kind == "partner" and scope is not None and scope not in principal.scopes:
        return Decision.FORBID
    if "admin" in roles or (resource is None and action not in ATTRIBUTE_ACTIONS):
        return Decision.ALLOW
    if action in OWN_ORDER_ACTIONS:
        if resource is None or not resource.exists:
            return Decision.HIDE
        if "support" in roles and action == "order.read":
            return Decision.ALLOW
        return Decision.ALLOW if resource.customer_id == principal.subject else Decision.HIDE
    if action in OWN_SKU_ACTIONS and "partner" in roles:
        owner = resource.owner_partner_id if resource is not None else None
        if owner is None:
            return Decision.ALLOW if action == "product.upsert" else Decision.FORBID  # new SKUs may be claimed
        return Decision.ALLOW if owner == principal.subject else Decision.FORBID
    if action in OWN_ACCOUNT_ACTIONS:
        if "support" in roles:
            return Decision.ALLOW  # the route answers 404 for an account that does not exist
        mine = resource is not None and resource.exists and resource.user_id == principal.subject
        return Decision.ALLOW if mine else Decision.HIDE
    if action in OWN_METHOD_ACTIONS:  # another user's method is not found, nor is a method no user holds
        if resource is None:
            return Decision.ALLOW
        return Decision.ALLOW if resource.exists and resource.customer_id == principal.subject else Decision.HIDE
    if action in OWN_GOODS_ACTIONS and "partner" in roles:
        owners = resource.sku_owners if resource is not None and resource.exists else frozenset()
        if principal.subject not in owners:  # no such order, or none of its goods: the partner learns nothing of it
            return Decision.HIDE
        return Decision.ALLOW if owners == {principal.subject} else Decision.FORBID
    return Decision.ALLOW


def authorize(principal: Principal, action: Action, resource: Resource | None = None) -> None:
    """Nothing when ``decide`` allows; else the problem it calls for (404 to hide, 403 to forbid)."""
    decision = decide(principal, action, resource)
    if decision is Decision.HIDE:
        raise Problem(404, "not-found", "not found")
    if decision is Decision.FORBID:
        scope = SCOPES.get(action)
        if principal.kind == "partner" and scope is not None and scope not in principal.scopes:
            challenge = {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'}  # RFC 6750
            raise Problem(403, "insufficient-scope", "not allowed", f"{action} needs the scope {scope}", challenge)
        raise Problem(403, "forbidden", "not allowed", f"{action} is not allowed for this caller")
