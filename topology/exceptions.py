"""Errors of the topology package (the messaging contract)."""


class TopologyError(Exception):
    """Base of every error topology/ raises."""


class DecodeError(TopologyError):
    """Bytes that are not a valid message of the registry; the message says why (it goes to the DLQ)."""


class UnknownMessageType(DecodeError):
    """An envelope whose (type, version) is not in the registry."""


class SchemaEvolutionError(TopologyError):
    """A change to a message type that breaks readers of its earlier shape."""
