"""One user as a state machine: register once, then profile, preferences, addresses, devices; pure, no I/O, no clock.

Commands are idempotent: a repeated command id changes nothing and emits nothing (the
event it caused is already on the topic), and so does a command that changes nothing.
A second registration of the same user id, a change to a user never registered, or a
user's own change while the account is suspended or closed, changes nothing either: the
command is answered by the state the user is in, which the read models already show. A
command that breaks a rule of the data (an address past ``MAX_ADDRESSES``, a postal code
its country has no such shape of) is refused: it goes to the DLQ with the reason.

A staff role granted or revoked, and an account suspended, reinstated or closed
(``shopstream user``), is already in the account's credentials when its command arrives:
the flow records it as an event, for the audit log and the read models, whatever state it
holds for the user (the credentials decide what a user may do).

Time comes in the command: ``at`` is when it was sent (the envelope's ``occurred_at``), the
time a marketing consent was given and a device registered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import msgspec
from msgspec import UNSET

from flows.outcome import Refusal, Send
from topology.messages import (
    AccountClosed,
    AccountReinstated,
    AccountSuspended,
    AddAddress,
    AddressAdded,
    AddressChanged,
    AddressRemoved,
    ChangeAddress,
    CloseAccount,
    DeviceRegistered,
    DeviceUnregistered,
    GrantRole,
    Message,
    PreferencesUpdated,
    ProfileUpdated,
    RegisterDevice,
    RegisterUser,
    ReinstateAccount,
    RemoveAddress,
    RevokeRole,
    RoleGranted,
    RoleRevoked,
    SuspendAccount,
    UnregisterDevice,
    UpdatePreferences,
    UpdateProfile,
    UserRegistered,
)
from topology.messages.users import (
    MAX_ADDRESSES,
    MAX_DEVICES,
    AccountStatus,
    Address,
    Channel,
    Channels,
    Device,
    Preferences,
    SavedAddress,
)
from topology.postal import postal_code_problem
from topology.topics import USER_EVENTS

MEMORY = 1_000
NO_PREFERENCES = Preferences()
CHANNEL_ORDER: tuple[Channel, ...] = ("email", "sms", "push")
STATUS_CHANGES: dict[type, tuple[AccountStatus, type]] = {
    SuspendAccount: ("suspended", AccountSuspended),
    ReinstateAccount: ("active", AccountReinstated),
    CloseAccount: ("closed", AccountClosed),
}


@dataclass
class User:
    """A user's state.

    The fields after ``seen`` have immutable defaults, kept on the class, so a user the recovery
    store pickled before they existed reads them.
    """

    user_id: str
    email: str
    name: str
    phone: str | None = None
    seen: dict[str, None] = field(default_factory=dict)  # command ids applied, oldest first
    status: AccountStatus = "active"
    preferences: Preferences = NO_PREFERENCES
    addresses: tuple[SavedAddress, ...] = ()  # in the order they were saved
    devices: tuple[Device, ...] = ()  # oldest first


Outcome = tuple[User | None, list[Send] | Refusal]


def handle(user: User | None, message: Message, command_id: str, at: datetime) -> Outcome:
    if user is not None and command_id in user.seen:
        return user, []
    match message:
        case GrantRole() | RevokeRole():
            kind = RoleGranted if isinstance(message, GrantRole) else RoleRevoked
            change = kind(
                user_id=message.user_id, role=message.role, roles=message.roles, by=message.by, os_user=message.os_user
            )
            return (_seen(user, command_id) if user else None), [Send(USER_EVENTS, message.user_id, change)]
        case SuspendAccount() | ReinstateAccount() | CloseAccount():
            status, recorded = STATUS_CHANGES[type(message)]
            if user is not None:
                user.status = status
            told = recorded(user_id=message.user_id, reason=message.reason, by=message.by, os_user=message.os_user)
            return (_seen(user, command_id) if user else None), [Send(USER_EVENTS, message.user_id, told)]
        case RegisterUser() if user is None:
            user = User(message.user_id, message.email, message.name)
            event: Message | None = UserRegistered(user_id=user.user_id, email=user.email, name=user.name)
        case (
            UpdateProfile()
            | UpdatePreferences()
            | AddAddress()
            | ChangeAddress()
            | RemoveAddress()
            | RegisterDevice()
            | UnregisterDevice()
        ) if user is not None and user.status == "active":  # an account that is not active takes none of its own
            changed = _own_change(user, message, at)
            if isinstance(changed, Refusal):
                return user, changed
            event = changed
        case _:
            return user, []
    if event is None:
        return _seen(user, command_id), []
    return _seen(user, command_id), [Send(USER_EVENTS, user.user_id, event)]


def _own_change(user: User, message: Message, at: datetime) -> Message | Refusal | None:
    """The event of a change the user asked for (None: it changes nothing), the user changed with it."""
    match message:
        case UpdateProfile():
            name = message.name if message.name is not None else user.name
            phone = message.phone if message.phone is not None else user.phone
            if (name, phone) == (user.name, user.phone):
                return None
            user.name, user.phone = name, phone
            return ProfileUpdated(user_id=user.user_id, name=name, phone=phone)
        case UpdatePreferences():
            preferences = preferences_after(user.preferences, message, at)
            if preferences == user.preferences:
                return None
            user.preferences = preferences
            return PreferencesUpdated(user_id=user.user_id, preferences=preferences)
        case AddAddress():
            if any(a.address_id == message.address_id for a in user.addresses):
                return None
            if len(user.addresses) >= MAX_ADDRESSES:
                return Refusal(f"{user.user_id} has {MAX_ADDRESSES} addresses, the most one may save")
            problem = postal_code_problem(message.address.country, message.address.postal_code)
            if problem:
                return Refusal(problem)
            default = message.make_default or not user.addresses
            saved = _saved(message.address, message.address_id, default)
            user.addresses = (*_not_default(user.addresses, default), saved)
            return AddressAdded(user_id=user.user_id, address_id=message.address_id, addresses=user.addresses)
        case ChangeAddress():
            old = next((a for a in user.addresses if a.address_id == message.address_id), None)
            if old is None:
                return None
            problem = postal_code_problem(message.address.country, message.address.postal_code)
            if problem:
                return Refusal(problem)
            saved = _saved(message.address, message.address_id, old.default or message.make_default)
            addresses = tuple(
                saved if a.address_id == message.address_id else a
                for a in _not_default(user.addresses, message.make_default)
            )
            if addresses == user.addresses:
                return None
            user.addresses = addresses
            return AddressChanged(user_id=user.user_id, address_id=message.address_id, addresses=addresses)
        case RemoveAddress():
            left = tuple(a for a in user.addresses if a.address_id != message.address_id)
            if len(left) == len(user.addresses):
                return None
            if left and not any(a.default for a in left):  # the default went: the first one left takes its place
                left = (msgspec.structs.replace(left[0], default=True), *left[1:])
            user.addresses = left
            return AddressRemoved(user_id=user.user_id, address_id=message.address_id, addresses=left)
        case RegisterDevice():
            device = Device(
                device_id=message.device_id, platform=message.platform, token=message.token, registered_at=at
            )
            known = next((d for d in user.devices if d.device_id == message.device_id), None)
            if known is not None and (known.platform, known.token) == (device.platform, device.token):
                return None
            others = tuple(d for d in user.devices if d.device_id != message.device_id)
            user.devices = (*others, device)[-MAX_DEVICES:]
            return DeviceRegistered(user_id=user.user_id, device_id=device.device_id, devices=user.devices)
        case UnregisterDevice():
            devices = tuple(d for d in user.devices if d.device_id != message.device_id)
            if len(devices) == len(user.devices):
                return None
            user.devices = devices
            return DeviceUnregistered(user_id=user.user_id, device_id=message.device_id, devices=devices)
    return None


def preferences_after(held: Preferences, change: UpdatePreferences, at: datetime) -> Preferences:
    """``held`` with ``change`` applied: channels in one order, each once; a new opt-in dated ``at``."""
    channels = held.channels
    if change.channels is not UNSET:
        channels = Channels(
            transactional=_in_order(change.channels.transactional), marketing=_in_order(change.channels.marketing)
        )
    consent, consent_at = held.marketing_consent, held.marketing_consent_at
    if change.marketing_consent is not UNSET and change.marketing_consent != consent:
        consent, consent_at = change.marketing_consent, at if change.marketing_consent else None
    return Preferences(
        channels=channels,
        marketing_consent=consent,
        marketing_consent_at=consent_at,
        quiet_hours=held.quiet_hours if change.quiet_hours is UNSET else change.quiet_hours,
        locale=held.locale if change.locale is UNSET else change.locale,
    )


def _in_order(channels: tuple[Channel, ...]) -> tuple[Channel, ...]:
    return tuple(c for c in CHANNEL_ORDER if c in channels)


def _saved(address: Address, address_id: str, default: bool) -> SavedAddress:
    return SavedAddress(address_id=address_id, default=default, **msgspec.structs.asdict(address))


def _not_default(addresses: tuple[SavedAddress, ...], when: bool) -> tuple[SavedAddress, ...]:
    """``addresses``, none of them the default any more ``when`` another one is becoming it."""
    if not when:
        return addresses
    return tuple(msgspec.structs.replace(a, default=False) if a.default else a for a in addresses)


def _seen(user: User, command_id: str) -> User:
    user.seen[command_id] = None
    if len(user.seen) > MEMORY:
        del user.seen[next(iter(user.seen))]
    return user
