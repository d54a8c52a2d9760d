"""Errors of the flows package."""


class FlowError(Exception):
    """Base of every error flows/ raises."""


class GatewayUnavailable(FlowError):
    """The payment gateway did not answer after every retry (infrastructure: the step crashes)."""


class ChannelUnavailable(FlowError):
    """An email, SMS or push provider did not answer after every retry (infrastructure: the step crashes)."""
