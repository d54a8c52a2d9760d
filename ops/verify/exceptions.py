"""Errors of ``shopstream verify``: a system it cannot read (exit 2), never a breach (exit 1)."""

from ops.exceptions import OpsError


class CannotVerify(OpsError):
    """A topic or a store cannot be read, or is not set up; the message names the fix."""


class EmptySystem(CannotVerify):
    """No topic of the topology exists under the prefix: there is nothing to verify."""
