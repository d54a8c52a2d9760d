"""Errors of the sinks package."""


class SinkError(Exception):
    """Base of every error sinks/ raises."""


class StoreUnavailable(SinkError):
    """The store cannot take writes now (down, overloaded, timing out): pause and retry the batch."""


class DeadLetterFailed(SinkError):
    """Dead letters could not be delivered to Kafka: the batch is not committed and will be redone."""
