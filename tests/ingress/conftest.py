"""The ingress fixtures (an app on the real stack in a private namespace), shared by its test modules."""

from tests.ingress.test_api import api, private

__all__ = ["api", "private"]
