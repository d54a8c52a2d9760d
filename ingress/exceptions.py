"""Errors of the ingress package."""


class IngressError(Exception):
    """Base of every error ingress/ raises."""


class ReadModelUnavailable(IngressError):
    """Neither the replica nor the primary answered a read."""


class StoreUnavailable(IngressError):
    """A store a read needs did not answer; the client is told to retry (503)."""

    def __init__(self, title: str, detail: str) -> None:
        super().__init__(f"{title}: {detail}")
        self.title = title
        self.detail = detail
