"""Users: registration, profiles and staff roles, keyed by user id."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from topology.messages.base import Command, Event, Id

Email = Annotated[str, msgspec.Meta(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
Phone = Annotated[str, msgspec.Meta(pattern=r"^\+[1-9][0-9]{6,14}$")]
#: The roles an operator grants (``shopstream user grant``); every user is a customer besides.
StaffRole = Literal["support", "admin"]
AccountRole = Literal["customer", "support", "admin"]
#: Who changed a role: the operator as they named themselves (``--by``), and the OS account that ran the command.
Operator = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


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
