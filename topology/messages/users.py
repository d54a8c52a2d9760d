"""Users: registration, profiles, preferences, addresses, push devices, account status, staff roles; by user id.

An event that changes one of a user's collections (addresses, devices) carries the whole
collection as it is after the change (``addresses``, ``devices``), as a role change carries
every role held: each such event states that part of the user in full.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from topology.messages.base import Command, Event, Id, Reason
from topology.postal import Country

Email = Annotated[str, msgspec.Meta(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
Phone = Annotated[str, msgspec.Meta(pattern=r"^\+[1-9][0-9]{6,14}$")]
#: The roles an operator grants (``shopstream user grant``); every user is a customer besides.
StaffRole = Literal["support", "admin"]
AccountRole = Literal["customer", "support", "admin"]
#: Who changed a role or an account's status: the operator as they named themselves (``--by``), and the OS account.
Operator = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
AccountStatus = Literal["active", "suspended", "closed"]

Channel = Literal["email", "sms", "push"]
#: Channels, at most one of each (the ingress and the flow keep them in this order).
ChannelList = Annotated[tuple[Channel, ...], msgspec.Meta(max_length=3)]
#: The locales (BCP 47) messages are written in; the first is a user's until they choose.
Locale = Literal["en-GB", "en-US", "de-DE", "fr-FR", "es-ES", "it-IT", "nl-NL"]
#: A local time of day, ``HH:MM`` (24 hours).
TimeOfDay = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
#: An IANA time zone's name (``Europe/Berlin``); the ingress checks that it names a zone.
TimeZone = Annotated[
    str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$")
]
Instant = Annotated[datetime, msgspec.Meta(tz=True)]
#: A line of an address: no control characters, no whitespace at either end.
AddressText = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^(?!\s)(?!.*\s$)[^\x00-\x1f\x7f]+$")]
OptionalAddressText = Annotated[str, msgspec.Meta(max_length=200, pattern=r"^((?!\s)(?!.*\s$)[^\x00-\x1f\x7f]+)?$")]
#: A postal code within the bounds every country's fits (``topology.postal`` holds each country's shape).
PostalCode = Annotated[str, msgspec.Meta(max_length=16, pattern=r"^[A-Za-z0-9 -]*$")]
Platform = Literal["ios", "android", "web"]
#: A push service's token for one device (APNs, FCM, a Web Push subscription's endpoint): printable, no spaces.
DeviceToken = Annotated[str, msgspec.Meta(min_length=1, max_length=1024, pattern=r"^[\x21-\x7e]+$")]
MAX_ADDRESSES = 20
#: A device registered past this many takes the place of the one registered first.
MAX_DEVICES = 10


class RegisterUser(Command, frozen=True, kw_only=True):
    user_id: Id
    email: Email
    name: Name


class UpdateProfile(Command, frozen=True, kw_only=True):
    user_id: Id
    name: Name | None = None
    phone: Phone | None = None


class UserRegistered(Event, frozen=True, kw_only=True):
    user_id: Id
    email: Email
    name: Name


class ProfileUpdated(Event, frozen=True, kw_only=True):
    user_id: Id
    name: Name
    phone: Phone | None = None


class GrantRole(Command, frozen=True, kw_only=True):
    """An operator gave the account a staff role, already in its credentials; ``roles``: all it holds now."""

    user_id: Id
    role: StaffRole
    roles: tuple[AccountRole, ...]
    by: Operator
    os_user: Operator


class RevokeRole(Command, frozen=True, kw_only=True):
    """An operator took a staff role from the account, already in its credentials; ``roles``: all it holds now."""

    user_id: Id
    role: StaffRole
    roles: tuple[AccountRole, ...]
    by: Operator
    os_user: Operator


class RoleGranted(Event, frozen=True, kw_only=True):
    user_id: Id
    role: StaffRole
    roles: tuple[AccountRole, ...]
    by: Operator
    os_user: Operator


class RoleRevoked(Event, frozen=True, kw_only=True):
    user_id: Id
    role: StaffRole
    roles: tuple[AccountRole, ...]
    by: Operator
    os_user: Operator


# Account status: set by an operator (``shopstream user suspend|reinstate|close``), already in the account's
# credentials when the command arrives; the flow records it as an event, for the audit log and the read model.


class SuspendAccount(Command, frozen=True, kw_only=True):
    user_id: Id
    reason: Reason
    by: Operator
    os_user: Operator


class ReinstateAccount(Command, frozen=True, kw_only=True):
    user_id: Id
    reason: Reason = ""
    by: Operator
    os_user: Operator


class CloseAccount(Command, frozen=True, kw_only=True):
    user_id: Id
    reason: Reason
    by: Operator
    os_user: Operator


class AccountSuspended(Event, frozen=True, kw_only=True):
    user_id: Id
    reason: Reason
    by: Operator
    os_user: Operator


class AccountReinstated(Event, frozen=True, kw_only=True):
    user_id: Id
    reason: Reason = ""
    by: Operator
    os_user: Operator


class AccountClosed(Event, frozen=True, kw_only=True):
    user_id: Id
    reason: Reason
    by: Operator
    os_user: Operator


# Preferences: which channels each kind of message may take, consent to marketing, quiet hours, locale.


class Channels(msgspec.Struct, frozen=True, kw_only=True):
    """The channels each kind of message may take: ``transactional`` (orders, the account), ``marketing``."""

    transactional: ChannelList
    marketing: ChannelList


#: Until a user chooses: transactional messages by email, no marketing.
DEFAULT_CHANNELS = Channels(transactional=("email",), marketing=())


class QuietHours(msgspec.Struct, frozen=True, kw_only=True):
    """From ``start`` until ``end``, local times in ``time_zone`` (past midnight when ``end`` is earlier)."""

    start: TimeOfDay
    end: TimeOfDay
    time_zone: TimeZone


class Preferences(msgspec.Struct, frozen=True, kw_only=True):
    """A user's preferences; ``marketing_consent_at``: when the opt-in now held was given (None without one)."""

    channels: Channels = DEFAULT_CHANNELS
    marketing_consent: bool = False
    marketing_consent_at: Instant | None = None
    quiet_hours: QuietHours | None = None
    locale: Locale = "en-GB"


class UpdatePreferences(Command, frozen=True, kw_only=True):
    """Change the preferences given (an unset one is kept); ``quiet_hours`` None turns them off."""

    user_id: Id
    channels: Channels | UnsetType = UNSET
    marketing_consent: bool | UnsetType = UNSET
    quiet_hours: QuietHours | UnsetType | None = UNSET
    locale: Locale | UnsetType = UNSET


class PreferencesUpdated(Event, frozen=True, kw_only=True):
    user_id: Id
    preferences: Preferences


# Addresses: at most ``MAX_ADDRESSES``, one of them the default while there are any.


class Address(msgspec.Struct, frozen=True, kw_only=True):
    """A postal address; ``name`` is the recipient's."""

    name: Name
    line1: AddressText
    line2: OptionalAddressText = ""
    city: AddressText
    region: OptionalAddressText = ""
    postal_code: PostalCode = ""
    country: Country


class SavedAddress(Address, frozen=True, kw_only=True):
    address_id: Id
    default: bool = False


class AddAddress(Command, frozen=True, kw_only=True):
    """Save a new address; the first one saved, or one with ``make_default``, becomes the default."""

    user_id: Id
    address_id: Id
    address: Address
    make_default: bool = False


class ChangeAddress(Command, frozen=True, kw_only=True):
    """Replace a saved address; with ``make_default`` it becomes the default (without, the default stays)."""

    user_id: Id
    address_id: Id
    address: Address
    make_default: bool = False


class RemoveAddress(Command, frozen=True, kw_only=True):
    """Remove a saved address; when it was the default, the first one left becomes the default."""

    user_id: Id
    address_id: Id


class AddressAdded(Event, frozen=True, kw_only=True):
    """``addresses``: every address the user has now, in the order they were saved."""

    user_id: Id
    address_id: Id
    addresses: tuple[SavedAddress, ...]


class AddressChanged(Event, frozen=True, kw_only=True):
    user_id: Id
    address_id: Id
    addresses: tuple[SavedAddress, ...]


class AddressRemoved(Event, frozen=True, kw_only=True):
    user_id: Id
    address_id: Id
    addresses: tuple[SavedAddress, ...]


# Push devices: at most ``MAX_DEVICES``, for the notifications flow to push to.


class Device(msgspec.Struct, frozen=True, kw_only=True):
    device_id: Id
    platform: Platform
    token: DeviceToken
    registered_at: Instant


class RegisterDevice(Command, frozen=True, kw_only=True):
    """A device the user wants push messages on; the same id again with another token replaces the token."""

    user_id: Id
    device_id: Id
    platform: Platform
    token: DeviceToken


class UnregisterDevice(Command, frozen=True, kw_only=True):
    user_id: Id
    device_id: Id


class DeviceRegistered(Event, frozen=True, kw_only=True):
    """``devices``: every device the user has now, oldest first (past ``MAX_DEVICES`` the oldest went)."""

    user_id: Id
    device_id: Id
    devices: tuple[Device, ...]


class DeviceUnregistered(Event, frozen=True, kw_only=True):
    user_id: Id
    device_id: Id
    devices: tuple[Device, ...]
