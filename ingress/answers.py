"""Every answer the API sends, declared once as a msgspec Struct, and ``write``, which sends one.

Resources answer only by encoding these Structs, and the OpenAPI document is generated from
them (``openapi.py``), so the document cannot drift from what is sent. A field whose default
is ``UNSET`` is left out of the answer when the store's document has no such field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

import falcon
import msgspec
from msgspec import UNSET, UnsetType

from topology.messages.users import AccountStatus, Channel, Locale, Platform

JSON = "application/json"
#: A time as RFC 3339 text (``isoformat``), in the zone the store answered in.
Instant = Annotated[str, msgspec.Meta(extra_json_schema={"format": "date-time"})]
ENCODER = msgspec.json.Encoder()


def write(
    resp: falcon.Response, answer: msgspec.Struct, status: int = 200, headers: Mapping[str, str] | None = None
) -> None:
    """``answer`` as the response's JSON body, with ``status`` and ``headers``."""
    resp.status = falcon.code_to_http_status(status)
    resp.content_type = JSON
    resp.data = ENCODER.encode(answer)
    if headers:
        resp.set_headers(headers)
    if isinstance(answer, Accepted):  # the access log names the command and its order (ingress/access_log.py)
        resp.context.command_id = answer.command_id
        resp.context.order_id = answer.order_id


# Commands -------------------------------------------------------------------------------


class Accepted(msgspec.Struct, frozen=True):
    """A command on its way: where to watch it, and the id of what it makes (an order, an address, a device)."""

    command_id: str
    status_url: str
    order_id: str | None = None
    address_id: str | UnsetType = UNSET
    device_id: str | UnsetType = UNSET


class Registered(msgspec.Struct, frozen=True):
    """A registration on its way: the new user's id; the profile appears at ``status_url``."""

    command_id: str
    user_id: str
    status_url: str


# Orders ---------------------------------------------------------------------------------


class OrderLine(msgspec.Struct, frozen=True):
    sku: str
    quantity: int
    unit_amount: int


class StatusChange(msgspec.Struct, frozen=True):
    version: int
    status: str
    occurred_at: Instant


class OrderPayment(msgspec.Struct, frozen=True):
    """The order's payment as the payments read model has it.

    ``status``: authorized, declined, captured, voided or refunded; amounts in minor units of
    ``currency``; ``refunded_amount`` sums every refund made.
    """

    status: str
    payment_id: str | None
    authorized_amount: int | None
    captured_amount: int | None
    refunded_amount: int
    currency: str | None
    decline_reason: str | None
    updated_at: Instant


class Order(msgspec.Struct, frozen=True):
    """An order as the read model has it, with its lines, the history of its status and its payment.

    ``payment`` is null until the payment's first outcome is in the read model.
    """

    order_id: str
    customer_id: str | None
    status: str
    total_amount: int | None
    currency: str | None
    placed_at: Instant | None
    updated_at: Instant
    version: int
    lines: list[OrderLine]
    history: list[StatusChange]
    payment: OrderPayment | None


# Products and stock ---------------------------------------------------------------------


class Product(msgspec.Struct, frozen=True):
    """A product as the search index holds it, with its stock (unset until a stock level is known)."""

    sku: str
    title: str
    description: str | UnsetType = UNSET
    brand: str | UnsetType = UNSET
    category: str | UnsetType = UNSET
    tags: list[str] | UnsetType = UNSET
    price_amount: int | UnsetType = UNSET
    currency: str | UnsetType = UNSET
    owner_partner_id: str | UnsetType | None = UNSET
    updated_at: Instant | UnsetType = UNSET
    version: int | UnsetType = UNSET
    in_stock: bool | UnsetType = UNSET
    stock_available: int | UnsetType = UNSET


class Facet(msgspec.Struct, frozen=True):
    value: str
    count: int


class PriceRange(msgspec.Struct, frozen=True):
    """Matches priced from ``min_price`` (inclusive) to ``max_price`` (exclusive; null: no bound), minor units."""

    key: str
    min_price: int | None
    max_price: int | None
    count: int


class Facets(msgspec.Struct, frozen=True):
    """The most frequent values of each facet among the matches (a facet not asked for is left out)."""

    brand: list[Facet] | UnsetType = UNSET
    category: list[Facet] | UnsetType = UNSET
    tags: list[Facet] | UnsetType = UNSET
    price: list[PriceRange] | UnsetType = UNSET


class ProductPage(msgspec.Struct, frozen=True):
    """One page of matches, best first (or in the order asked for).

    ``total`` counts every match up to 10,000 (``total_exact`` false: at least that many);
    ``next_cursor`` (null on the last page) asks for the next page, however deep.
    """

    total: int
    items: list[Product]
    facets: Facets
    next_cursor: str | None = None
    total_exact: bool = True


class Suggestion(msgspec.Struct, frozen=True):
    """A completion: a product's title (with its SKU), or a brand or category to search by."""

    text: str
    kind: Literal["product", "brand", "category"]
    sku: str | None = None


class Suggestions(msgspec.Struct, frozen=True):
    items: list[Suggestion]


class OrderSummary(msgspec.Struct, frozen=True):
    """An order as support finds it (its lines and history: ``GET /v1/orders/{order_id}``)."""

    order_id: str
    status: str
    updated_at: Instant
    version: int
    customer_id: str | None = None
    total_amount: int | None = None
    currency: str | None = None
    placed_at: Instant | None = None
    skus: list[str] | None = None


class OrderPage(msgspec.Struct, frozen=True):
    """Newest placed first; ``next_cursor`` (null on the last page) asks for the next page."""

    total: int
    items: list[OrderSummary]
    next_cursor: str | None = None
    total_exact: bool = True


class StockLevel(msgspec.Struct, frozen=True):
    sku: str
    total: int
    reserved: int
    available: int
    version: int
    source: Literal["cache", "database"]


# The caller's own -----------------------------------------------------------------------


class Channels(msgspec.Struct, frozen=True):
    """The channels each kind of message may take."""

    transactional: list[Channel]
    marketing: list[Channel]


class QuietHours(msgspec.Struct, frozen=True):
    start: str
    end: str
    time_zone: str


class Preferences(msgspec.Struct, frozen=True):
    """``marketing_consent_at``: when the opt-in held now was given (null without one)."""

    channels: Channels
    marketing_consent: bool
    marketing_consent_at: Instant | None
    quiet_hours: QuietHours | None
    locale: Locale


class SavedAddress(msgspec.Struct, frozen=True):
    address_id: str
    name: str
    line1: str
    line2: str
    city: str
    region: str
    postal_code: str
    country: str
    default: bool


class AddressBook(msgspec.Struct, frozen=True):
    """In the order they were saved; one of them is the default while there are any."""

    items: list[SavedAddress]


class Device(msgspec.Struct, frozen=True):
    device_id: str
    platform: Platform
    registered_at: Instant


class Profile(msgspec.Struct, frozen=True):
    """An account as the read models have it: the profile, its status, preferences, addresses and push devices."""

    user_id: str
    email: str | None
    name: str | None
    phone: str | None
    registered_at: Instant | None
    updated_at: Instant
    version: int
    status: AccountStatus
    preferences: Preferences
    addresses: list[SavedAddress]
    devices: list[Device]


class MyOrder(msgspec.Struct, frozen=True):
    order_id: str
    status: str
    total_amount: int | None
    currency: str | None
    placed_at: Instant


class MyOrderPage(msgspec.Struct, frozen=True):
    """Newest placed first; ``next_cursor`` (null on the last page) asks for the next page."""

    items: list[MyOrder]
    next_cursor: str | None = None


class Notification(msgspec.Struct, frozen=True):
    notification_id: str
    user_id: str
    channel: str
    status: str
    occurred_at: Instant
    reason: str | UnsetType | None = UNSET


class NotificationPage(msgspec.Struct, frozen=True):
    """Newest first."""

    items: list[Notification]


class PaymentMethod(msgspec.Struct, frozen=True):
    """A card saved with the payment provider, as the shopper is shown it (never its number)."""

    payment_method_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    default: bool


class PaymentMethods(msgspec.Struct, frozen=True):
    """The caller's saved payment methods: the default first, then newest first."""

    items: list[PaymentMethod]


# Sessions and tokens --------------------------------------------------------------------


class SessionTokens(msgspec.Struct, frozen=True):
    """An access token and the single-use refresh token of the same session."""

    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    refresh_token: str


class ClientToken(msgspec.Struct, frozen=True):
    """A partner's access token (OAuth2 client credentials) with the scopes granted."""

    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    scope: str


# The service ----------------------------------------------------------------------------


class Health(msgspec.Struct, frozen=True):
    status: Literal["ok"]


class Readiness(msgspec.Struct, frozen=True):
    status: Literal["ready", "not ready"]
    #: each store the API needs: "ok" or what went wrong
    checks: dict[str, str]


class Jwk(msgspec.Struct, frozen=True):
    """One public signing key (RFC 8037: Ed25519 as OKP)."""

    kty: str
    crv: str
    x: str
    kid: str
    use: str
    alg: str


class Jwks(msgspec.Struct, frozen=True):
    keys: list[Jwk]


class Problem(msgspec.Struct, frozen=True):
    """RFC 9457 problem details; OAuth2's token endpoint adds its ``error`` code (RFC 6749)."""

    type: str
    title: str
    status: int
    detail: str | UnsetType = UNSET
    error: str | UnsetType = UNSET
