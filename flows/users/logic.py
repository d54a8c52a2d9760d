"""One user's profile as a state machine: register once, then update; pure, no I/O, no clock.

Commands are idempotent: a repeated command id changes nothing and emits nothing (the
event it caused is already on the topic), and so does an update that changes nothing.
A second registration of the same user id, or an update of a user never registered,
changes nothing either: the command is answered by the state the user is in, which the
read models already show.

A staff role granted or revoked (``shopstream user grant|revoke``) is already in the
account's credentials when its command arrives: the flow records it as an event, for the
audit log, whatever state it holds for the user (the credentials decide what a user may do).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flows.outcome import Send
from topology.messages import (
    GrantRole,
    Message,
    ProfileUpdated,
    RegisterUser,
    RevokeRole,
    RoleGranted,
    RoleRevoked,
    UpdateProfile,
    UserRegistered,
)
from topology.topics import USER_EVENTS

MEMORY = 1_000


@dataclass
class User:
    user_id: str
    email: str
    name: str
    phone: str | None = None
    seen: dict[str, None] = field(default_factory=dict)  # command ids applied, oldest first


def handle(user: User | None, message: Message, command_id: str) -> tuple[User | None, list[Send]]:
    if user is not None and command_id in user.seen:
        return user, []
    match message:
        case GrantRole() | RevokeRole():
            kind = RoleGranted if isinstance(message, GrantRole) else RoleRevoked
            change = kind(
                user_id=message.user_id, role=message.role, roles=message.roles, by=message.by, os_user=message.os_user
            )
            return (_seen(user, command_id) if user else None), [Send(USER_EVENTS, message.user_id, change)]
        case RegisterUser() if user is None:
            user = User(message.user_id, message.email, message.name)
            event: Message = UserRegistered(user_id=user.user_id, email=user.email, name=user.name)
        case UpdateProfile() if user is not None:
            name = message.name if message.name is not None else user.name
            phone = message.phone if message.phone is not None else user.phone
            if (name, phone) == (user.name, user.phone):
                return _seen(user, command_id), []
            user.name, user.phone = name, phone
            event = ProfileUpdated(user_id=user.user_id, name=name, phone=phone)
        case _:
            return user, []
    return _seen(user, command_id), [Send(USER_EVENTS, user.user_id, event)]


def _seen(user: User, command_id: str) -> User:
    user.seen[command_id] = None
    if len(user.seen) > MEMORY:
        del user.seen[next(iter(user.seen))]
    return user
