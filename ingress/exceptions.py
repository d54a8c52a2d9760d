"""Errors of the ingress package."""


class IngressError(Exception):
    """Base of every error ingress/ raises."""


class ReadModelUnavailable(IngressError):
    """Neither the replica nor the primary answered a read."""
