"""Every HTTP operation of the ingress, declared once: ``create_app`` routes them, ``openapi`` documents them.

Each ``Operation`` pairs a route (method, path, summary; the public ones are
``topology.processes.ROUTES``, which the system's graph is drawn from) with how the ingress
answers it: the resource class and responder suffix, the request Struct, the query Struct,
the answer Struct and its status, who may call it, and the problems it may answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from ingress import answers
from ingress.address_book import AddressBookResource
from ingress.devices import DevicesResource
from ingress.me import MeResource
from ingress.orders import OrdersResource
from ingress.payment_methods import PaymentMethodsResource
from ingress.policy import Action, open_to_anyone
from ingress.products import ProductsResource
from ingress.schemas import (
    AddPaymentMethodRequest,
    AddressRequest,
    CancelOrderRequest,
    ClientCredentialsForm,
    DeliveryRequest,
    DeviceRequest,
    LoginRequest,
    LogoutRequest,
    MyOrdersQuery,
    NotificationsQuery,
    OrderQuery,
    OrderSearchQuery,
    PaymentMethodRequest,
    PlaceOrderRequest,
    PreferencesRequest,
    ProductQuery,
    ProductRequest,
    ProfileQuery,
    ProfileRequest,
    RefreshRequest,
    RefundRequest,
    RegisterRequest,
    ShipmentRequest,
    StockAdjustmentRequest,
    SuggestQuery,
)
from ingress.service import DocumentResource, HealthResource, KeysResource
from ingress.sessions import (
    ClientTokenResource,
    LoginResource,
    LogoutResource,
    RefreshResource,
    RegisterResource,
)
from ingress.stock import StockResource
from ingress.users import UsersResource
from topology import processes
from topology.processes import Route

#: Who may call: anyone, no token read ("public"); anyone, a token verified when sent ("anyone": the
#: policy's ``ANONYMOUS`` may take its action); a user's Bearer token; a user's or a partner's (OAuth2).
Security = Literal["public", "anyone", "user", "user or partner"]
JSON = answers.JSON
FORM = "application/x-www-form-urlencoded"

#: What a command may answer besides 202.
WRITE_PROBLEMS = (400, 401, 403, 404, 409, 413, 415, 422, 429, 503)
#: What a command without a body (a removal) may answer besides 202 (422: an Idempotency-Key used for another).
REMOVAL_PROBLEMS = (400, 401, 403, 404, 409, 422, 429, 503)
#: What a route that checks a secret may answer besides its own: its limits, the hashing budget.
CREDENTIAL_PROBLEMS = (400, 413, 415, 429, 503)
#: What a call to the payment provider's vault may answer besides its own (503: the provider did not answer).
VAULT_PROBLEMS = (400, 401, 403, 429, 503)


@dataclass(frozen=True)
class Operation:
    """One operation and how the ingress answers it.

    Attributes:
        route: method, path, summary and ``operationId``.
        resource: the resource class whose responder (``on_<method>[_<suffix>]``) answers it.
        suffix: the responder suffix; every operation of one path shares resource and suffix.
        answer: the Struct the answer is encoded from (None: no body, or ``schema`` says it).
        statuses: the statuses that carry ``answer``, with what each means.
        request: the body's Struct, in ``media``; ``body_required`` False when it may be left out.
        query: the query string's Struct (its fields are the query parameters).
        security: who may call it.
        idempotent: whether it takes an ``Idempotency-Key`` header.
        problems: the other statuses it may answer, each a problem+json.
        schema: the answer's JSON Schema and media type when it is no Struct (the document).
        action: what the policy is asked (its scope, for a partner, is in the document).
        credentials: it checks a password or a secret: its own limit per client address.
        cacheable: its answer has an ETag (``If-None-Match``: 304) and, to a caller without a token,
            may be kept by shared caches.

    """

    route: Route
    resource: type
    suffix: str | None = None
    answer: type[msgspec.Struct] | None = None
    statuses: tuple[tuple[int, str], ...] = ((200, "OK"),)
    request: type[msgspec.Struct] | None = None
    media: str = JSON
    body_required: bool = True
    query: type[msgspec.Struct] | None = None
    security: Security = "user"
    idempotent: bool = False
    problems: tuple[int, ...] = (400,)
    schema: tuple[str, dict[str, Any]] | None = None
    action: Action | None = None
    credentials: bool = False
    cacheable: bool = False

    @property
    def method(self) -> str:
        return self.route.method

    @property
    def path(self) -> str:
        return self.route.path


def _command(
    route: Route,
    resource: type,
    suffix: str | None,
    request: type[msgspec.Struct],
    action: Action,
    security: Security = "user",
    body_required: bool = True,
) -> Operation:
    """A command: a strict body in, 202 with where to watch it out, under an Idempotency-Key."""
    return Operation(
        route,
        resource,
        suffix,
        answers.Accepted,
        ((202, "accepted: the command is on its way"),),
        request=request,
        body_required=body_required,
        security=security,
        idempotent=True,
        problems=WRITE_PROBLEMS,
        action=action,
    )


def _removal(route: Route, resource: type, suffix: str | None, action: Action) -> Operation:
    """A command that takes no body (what it removes is in the path): 202 under an Idempotency-Key."""
    return Operation(
        route,
        resource,
        suffix,
        answers.Accepted,
        ((202, "accepted: the command is on its way"),),
        idempotent=True,
        problems=REMOVAL_PROBLEMS,
        action=action,
    )


def _catalog_read(
    route: Route,
    suffix: str | None,
    answer: type[msgspec.Struct],
    description: str,
    query: type[msgspec.Struct] | None,
    action: Action,
    problems: tuple[int, ...],
) -> Operation:
    """A read of the catalog: open to callers without a token when the policy lets ``ANONYMOUS`` take ``action``."""
    return Operation(
        route,
        ProductsResource,
        suffix,
        answer,
        ((200, description),),
        query=query,
        security="anyone" if open_to_anyone(action) else "user or partner",
        problems=problems,
        action=action,
        cacheable=True,
    )


LIVENESS = Route("liveness", "GET", "/healthz", "liveness")
READINESS = Route("readiness", "GET", "/readyz", "readiness")
SIGNING_KEYS = Route("signing_keys", "GET", "/.well-known/jwks.json", "signing keys")
DOCUMENT = Route("document", "GET", "/openapi.json", "this document")
#: The service's own endpoints, beside the public operations (``topology.processes.ROUTES``); metrics are
#: served on the operator port only (``ingress.metrics``).
SERVICE = (LIVENESS, READINESS, SIGNING_KEYS, DOCUMENT)

#: The order of the document's paths; a session's end (logout) comes last.
OPERATIONS: tuple[Operation, ...] = (
    _command(processes.PLACE_ORDER, OrdersResource, None, PlaceOrderRequest, "order.place"),
    Operation(
        processes.GET_ORDER,
        OrdersResource,
        "one",
        answers.Order,
        ((200, "the order"),),
        query=OrderQuery,
        problems=(400, 401, 404, 429),
        action="order.read",
    ),
    _command(processes.CANCEL_ORDER, OrdersResource, "cancel", CancelOrderRequest, "order.cancel"),
    _command(processes.REQUEST_REFUND, OrdersResource, "refunds", RefundRequest, "order.refund"),
    _command(processes.SHIP_ORDER, OrdersResource, "shipments", ShipmentRequest, "order.fulfil", "user or partner"),
    _command(
        processes.DELIVER_ORDER,
        OrdersResource,
        "delivery",
        DeliveryRequest,
        "order.fulfil",
        "user or partner",
        body_required=False,
    ),
    Operation(
        processes.SEARCH_ORDERS,
        OrdersResource,
        None,
        answers.OrderPage,
        ((200, "matches, newest placed first"),),
        query=OrderSearchQuery,
        problems=(400, 401, 403, 429, 503),
        action="order.search",
    ),
    _catalog_read(
        processes.SEARCH_PRODUCTS,
        None,
        answers.ProductPage,
        "matches and facets",
        ProductQuery,
        "product.search",
        (400, 401, 403, 429, 503),
    ),
    _catalog_read(
        processes.SUGGEST_PRODUCTS,
        "suggest",
        answers.Suggestions,
        "completions, best first",
        SuggestQuery,
        "product.search",
        (400, 401, 403, 429, 503),
    ),
    _catalog_read(
        processes.GET_PRODUCT,
        "one",
        answers.Product,
        "the product",
        None,
        "product.read",
        (400, 401, 403, 404, 429, 503),
    ),
    _command(processes.UPSERT_PRODUCT, ProductsResource, "one", ProductRequest, "product.upsert", "user or partner"),
    Operation(
        processes.GET_STOCK,
        StockResource,
        "one",
        answers.StockLevel,
        ((200, "the level"),),
        security="user or partner",
        problems=(400, 401, 403, 404, 429),
        action="stock.read",
    ),
    _command(
        processes.ADJUST_STOCK, StockResource, "adjustments", StockAdjustmentRequest, "stock.adjust", "user or partner"
    ),
    Operation(
        processes.GET_PROFILE,
        MeResource,
        None,
        answers.Profile,
        ((200, "the profile"),),
        query=ProfileQuery,
        problems=(400, 401, 403, 404, 429),
        action="profile.read",
    ),
    _command(processes.UPDATE_PROFILE, MeResource, None, ProfileRequest, "profile.update"),
    Operation(
        processes.LIST_NOTIFICATIONS,
        MeResource,
        "notifications",
        answers.NotificationPage,
        ((200, "newest first"),),
        query=NotificationsQuery,
        problems=(400, 401, 403, 429, 503),
        action="notifications.read",
    ),
    _command(processes.UPDATE_PREFERENCES, MeResource, "preferences", PreferencesRequest, "preferences.update"),
    Operation(
        processes.LIST_ADDRESSES,
        AddressBookResource,
        None,
        answers.AddressBook,
        ((200, "in the order they were saved"),),
        query=ProfileQuery,
        problems=(400, 401, 403, 429, 503),
        action="profile.read",
    ),
    _command(processes.ADD_ADDRESS, AddressBookResource, None, AddressRequest, "addresses.manage"),
    _command(processes.CHANGE_ADDRESS, AddressBookResource, "one", AddressRequest, "addresses.manage"),
    _removal(processes.REMOVE_ADDRESS, AddressBookResource, "one", "addresses.manage"),
    _command(processes.REGISTER_DEVICE, DevicesResource, None, DeviceRequest, "devices.manage"),
    _removal(processes.UNREGISTER_DEVICE, DevicesResource, "one", "devices.manage"),
    Operation(
        processes.LIST_MY_ORDERS,
        MeResource,
        "orders",
        answers.MyOrderPage,
        ((200, "newest placed first"),),
        query=MyOrdersQuery,
        problems=(400, 401, 403, 429, 503),
        action="order.list",
    ),
    Operation(
        processes.GET_ACCOUNT,
        UsersResource,
        "one",
        answers.Profile,
        ((200, "the account"),),
        problems=(400, 401, 403, 404, 429, 503),
        action="account.read",
    ),
    Operation(
        processes.LIST_PAYMENT_METHODS,
        PaymentMethodsResource,
        None,
        answers.PaymentMethods,
        ((200, "the default first, then newest first"),),
        problems=VAULT_PROBLEMS,
        action="payment_methods.read",
    ),
    Operation(
        processes.ADD_PAYMENT_METHOD,
        PaymentMethodsResource,
        None,
        answers.PaymentMethod,
        ((201, "saved"),),
        request=AddPaymentMethodRequest,
        idempotent=True,
        problems=(*VAULT_PROBLEMS, 413, 415, 422),
        action="payment_methods.manage",
    ),
    Operation(
        processes.UPDATE_PAYMENT_METHOD,
        PaymentMethodsResource,
        "one",
        answers.PaymentMethod,
        ((200, "the method, the default or not"),),
        request=PaymentMethodRequest,
        problems=(*VAULT_PROBLEMS, 404, 413, 415, 422),
        action="payment_methods.manage",
    ),
    Operation(
        processes.REMOVE_PAYMENT_METHOD,
        PaymentMethodsResource,
        "one",
        statuses=((204, "removed: it pays no order again"),),
        problems=(*VAULT_PROBLEMS, 404),
        action="payment_methods.manage",
    ),
    Operation(LIVENESS, HealthResource, None, answers.Health, ((200, "alive"),), security="public", problems=(429,)),
    Operation(
        READINESS,
        HealthResource,
        "ready",
        answers.Readiness,
        ((200, "ready"), (503, "not ready")),
        security="public",
        problems=(429,),
    ),
    Operation(SIGNING_KEYS, KeysResource, None, answers.Jwks, ((200, "JWKS"),), security="public", problems=(429,)),
    Operation(
        DOCUMENT,
        DocumentResource,
        None,
        statuses=((200, "OpenAPI 3.1"),),
        security="public",
        schema=(JSON, {"type": "object"}),
        problems=(429,),
    ),
    Operation(
        processes.REGISTER,
        RegisterResource,
        None,
        answers.Registered,
        ((202, "accepted: the account exists, the profile is on its way"),),
        request=RegisterRequest,
        security="public",
        problems=(*CREDENTIAL_PROBLEMS, 409, 422),
        credentials=True,
    ),
    Operation(
        processes.LOG_IN,
        LoginResource,
        None,
        answers.SessionTokens,
        ((200, "a new session"),),
        request=LoginRequest,
        security="public",
        problems=(*CREDENTIAL_PROBLEMS, 401, 403, 422),
        credentials=True,
    ),
    Operation(
        processes.REFRESH_SESSION,
        RefreshResource,
        None,
        answers.SessionTokens,
        ((200, "the session's next tokens (the refresh token presented is used up)"),),
        request=RefreshRequest,
        security="public",
        problems=(*CREDENTIAL_PROBLEMS, 401, 403, 422),
        credentials=True,
    ),
    Operation(
        processes.ISSUE_CLIENT_TOKEN,
        ClientTokenResource,
        None,
        answers.ClientToken,
        ((200, "a partner's access token"),),
        request=ClientCredentialsForm,
        media=FORM,
        security="public",
        problems=(*CREDENTIAL_PROBLEMS, 401),
        credentials=True,
    ),
    Operation(
        processes.LOG_OUT,
        LogoutResource,
        None,
        statuses=((204, "logged out: the access token and, with its refresh token, the session end"),),
        request=LogoutRequest,
        body_required=False,
        problems=(400, 401, 413, 415, 422, 429),
    ),
)


def by_path(operations: Iterable[Operation] = OPERATIONS) -> dict[str, list[Operation]]:
    """Each path's operations, in declaration order; one resource and suffix per path, one security."""
    paths: dict[str, list[Operation]] = {}
    for op in operations:
        paths.setdefault(op.path, []).append(op)
    for path, ops in paths.items():
        if len({(op.resource, op.suffix) for op in ops}) != 1:
            raise ValueError(f"{path}: every operation of a path has the same resource and suffix")
        if len({op.security == "public" for op in ops}) != 1:
            raise ValueError(f"{path}: a path is public for every method or for none")
        if any(op.security == "anyone" and op.method != "GET" for op in ops):
            raise ValueError(f"{path}: only reads are open to callers without a token")
        if len({op.method for op in ops}) != len(ops):
            raise ValueError(f"{path}: a method is declared twice")
    return paths


def open_operations(operations: Iterable[Operation] = OPERATIONS) -> frozenset[tuple[str, str]]:
    """The (path, method) pairs a caller without a token may call too (a token sent is verified)."""
    return frozenset((op.path, op.method) for op in operations if op.security == "anyone")


def public_paths(operations: Iterable[Operation] = OPERATIONS) -> frozenset[str]:
    """The paths anyone may call, without a token."""
    return frozenset(path for path, ops in by_path(operations).items() if ops[0].security == "public")
