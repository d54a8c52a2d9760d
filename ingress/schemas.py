"""Request bodies and query strings, each declared once as a strict msgspec Struct: unknown fields are refused.

The OpenAPI document is generated from these same Structs (``openapi.py``, from the
operations of ``routes.py``), so what the edge enforces and what it documents cannot drift apart.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from functools import cache
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from topology.messages.base import Currency, Quantity, Reason, Sku, Text
from topology.messages.catalog import Tags, Title
from topology.messages.inventory import Delta
from topology.messages.users import (
    AddressText,
    Channel,
    DeviceToken,
    Email,
    Locale,
    Name,
    OptionalAddressText,
    Phone,
    Platform,
    PostalCode,
    TimeOfDay,
    TimeZone,
)
from topology.postal import Country, postal_code_problem

Token = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
#: A saved payment method's id, as the payment provider names it.
PAYMENT_METHOD_ID = r"^pm_[A-Za-z0-9]+$"
PaymentMethodId = Annotated[str, msgspec.Meta(min_length=4, max_length=64, pattern=PAYMENT_METHOD_ID)]
Password = Annotated[str, msgspec.Meta(min_length=8, max_length=128)]
RefreshToken = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
FacetValue = Annotated[str, msgspec.Meta(max_length=80)]
Price = Annotated[int, msgspec.Meta(ge=0, le=10**12)]
#: What a shopper types: plain words, at most 200 characters, no control characters.
SearchText = Annotated[str, msgspec.Meta(max_length=200, pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]*$")]
ProductSort = Literal["relevance", "price_asc", "price_desc", "newest"]
FACET_NAMES = ("brand", "category", "tags", "price")
FacetList = Annotated[
    str, msgspec.Meta(pattern=f"^({'|'.join(FACET_NAMES)})(,({'|'.join(FACET_NAMES)}))*$", max_length=100)
]
PageSize = Annotated[int, msgspec.Meta(ge=1, le=100)]
#: An opaque token from a previous answer (``next_cursor``).
Cursor = Annotated[str, msgspec.Meta(min_length=1, max_length=512, pattern=r"^[A-Za-z0-9_-]+$")]
OrderStatus = Literal["placed", "confirmed", "cancelled", "shipped", "delivered"]
Wait = Annotated[float, msgspec.Meta(ge=0)]
#: A carrier's name: no control characters, no whitespace at either end (a trailing newline included).
Carrier = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^(?!\s)(?!.*\s$)[^\x00-\x1f\x7f]+$")]
#: A carrier's tracking code: letters and digits, with spaces, dots, slashes and hyphens between them.
TrackingCode = Annotated[
    str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^(?!.*\s$)[A-Za-z0-9](?:[A-Za-z0-9 ./-]*[A-Za-z0-9])?$")
]
#: An account's email: an ``Email`` without control characters (PostgreSQL text holds no NUL).
AccountEmail = Annotated[
    str, msgspec.Meta(max_length=254, pattern=r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$")
]


class LineRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    sku: Sku
    quantity: Quantity


class PlaceOrderRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Place an order; prices come from the catalog, never from the client.

    Paid with exactly one of: ``payment_token``, a one-time card token from the payment
    provider's card form, or ``payment_method_id``, one of the caller's saved payment methods.
    """

    lines: Annotated[list[LineRequest], msgspec.Meta(min_length=1, max_length=100)]
    payment_token: Token | None = None
    payment_method_id: PaymentMethodId | None = None


class AddPaymentMethodRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A card to save: the one-time token the payment provider's card form made of it (``default``: the default)."""

    token: Token
    default: bool = False


class PaymentMethodRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``default`` true makes the method the default; false, when it is the default, leaves no default."""

    default: bool


class CancelOrderRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    reason: Reason = "customer request"


class RefundRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    amount: Annotated[int, msgspec.Meta(ge=1, le=10**12)]
    currency: Currency
    reason: Reason


class ShipmentRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The order left the warehouse with this carrier, under this tracking code."""

    carrier: Carrier
    tracking_code: TrackingCode


class DeliveryRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The order reached its customer; the body may be left out, or be an empty object."""


class ProductRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Add or replace a product (the SKU is in the path)."""

    title: Title
    price_amount: Annotated[int, msgspec.Meta(ge=0, le=10**12)]
    currency: Currency
    description: Text = ""
    brand: Annotated[str, msgspec.Meta(max_length=80)] = ""
    category: Annotated[str, msgspec.Meta(max_length=80)] = ""
    tags: Tags = msgspec.field(default_factory=list)


class StockAdjustmentRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    delta: Delta
    reason: Reason = ""


class ProfileRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Name | None = None
    phone: Phone | None = None


@cache
def time_zones() -> frozenset[str]:
    """The IANA time zones this host knows (its tz database), read once."""
    return frozenset(zoneinfo.available_timezones())


#: At most one of each channel; the order does not matter.
ChannelList = Annotated[list[Channel], msgspec.Meta(max_length=3)]


class ChannelsRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The channels each kind of message may take (none: that kind is not sent at all)."""

    transactional: ChannelList
    marketing: ChannelList


class QuietHoursRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """From ``start`` until ``end`` (local times of ``time_zone``, an IANA name; past midnight when end is earlier)."""

    start: TimeOfDay
    end: TimeOfDay
    time_zone: TimeZone

    def __post_init__(self) -> None:
        if self.time_zone not in time_zones():
            raise ValueError(f"time_zone: {self.time_zone!r} is no IANA time zone (like Europe/Berlin)")
        if self.start == self.end:
            raise ValueError("start and end: the same time makes no quiet hours (send null to have none)")


class PreferencesRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What to change; a field left out is kept, ``quiet_hours: null`` turns them off."""

    channels: ChannelsRequest | UnsetType = UNSET
    #: true: the user opts in to marketing messages (the time is kept), false: out
    marketing_consent: bool | UnsetType = UNSET
    quiet_hours: QuietHoursRequest | UnsetType | None = UNSET
    locale: Locale | UnsetType = UNSET


class AddressRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A postal address; ``country`` ISO 3166-1 alpha-2, the postal code of its shape; ``default`` to make it that."""

    name: Name
    line1: AddressText
    city: AddressText
    country: Country
    line2: OptionalAddressText = ""
    region: OptionalAddressText = ""
    postal_code: PostalCode = ""
    default: bool = False

    def __post_init__(self) -> None:
        problem = postal_code_problem(self.country, self.postal_code)
        if problem:
            raise ValueError(problem)


class DeviceRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A device to push to: its platform and its push service's token (APNs, FCM, a Web Push endpoint)."""

    platform: Platform
    token: DeviceToken


class RegisterRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    email: AccountEmail
    name: Name
    password: Password


class LoginRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    email: Email
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class RefreshRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    refresh_token: RefreshToken


class LogoutRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Log out; with the refresh token, its session ends too."""

    refresh_token: RefreshToken | None = None


class ClientCredentialsForm(msgspec.Struct, frozen=True):
    """RFC 6749 client credentials, form-encoded; the client may authenticate by HTTP Basic instead.

    Credentials that cannot be a client's (missing, too long) are an ``invalid_client`` (401).
    """

    grant_type: Literal["client_credentials"]
    client_id: str | UnsetType = UNSET
    client_secret: str | UnsetType = UNSET
    #: space-separated; all of the client's scopes when left out
    scope: str | UnsetType = UNSET


# Query strings: each field is a query parameter (unset: not given).


class OrderQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    #: seconds to wait for the order to appear (bounded by the settings), read fresh
    wait: Wait = 0.0


class ProductQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A catalog search: words (any text: no query syntax is interpreted), filters, facets, order, page."""

    q: SearchText = ""
    brand: FacetValue | UnsetType = UNSET
    category: FacetValue | UnsetType = UNSET
    tags: FacetValue | UnsetType = UNSET
    #: in minor units, like ``price_amount``
    min_price: Price | UnsetType = UNSET
    max_price: Price | UnsetType = UNSET
    #: only products with units available now
    in_stock: bool = False
    sort: ProductSort = "relevance"
    #: the facets to count, comma-separated (all when left out)
    facets: FacetList | UnsetType = UNSET
    size: PageSize = 20
    #: the first match to answer (``from`` + ``size`` at most 10,000; past that, page with ``cursor``)
    offset: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = msgspec.field(name="from", default=0)
    #: the previous page's ``next_cursor``, for the page after it (same query, ``from`` left out)
    cursor: Cursor | UnsetType = UNSET


class SuggestQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    q: Annotated[str, msgspec.Meta(min_length=1, max_length=60)]
    size: Annotated[int, msgspec.Meta(ge=1, le=10)] = 8


class OrderSearchQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Support's search of orders: every filter given must hold; newest placed first."""

    customer: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | UnsetType = UNSET
    status: OrderStatus | UnsetType = UNSET
    sku: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | UnsetType = UNSET
    placed_after: Annotated[datetime, msgspec.Meta(tz=True)] | UnsetType = UNSET
    placed_before: Annotated[datetime, msgspec.Meta(tz=True)] | UnsetType = UNSET
    #: in minor units, like ``total_amount``
    min_total: Price | UnsetType = UNSET
    max_total: Price | UnsetType = UNSET
    size: PageSize = 20
    cursor: Cursor | UnsetType = UNSET


class ProfileQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    #: any value above zero reads the profile fresh (a client reading its own write)
    wait: Wait = 0.0


class NotificationsQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 20


class MyOrdersQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    size: PageSize = 20
    #: the previous page's ``next_cursor``, for the page after it
    cursor: Cursor | UnsetType = UNSET
