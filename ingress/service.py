"""The service's own endpoints: liveness, readiness, signing keys, the OpenAPI document (metrics: ``metrics``)."""

from __future__ import annotations

import falcon
import msgspec

from ingress import answers
from ingress.auth.tokens import KeyRing
from ingress.queries import Queries


class HealthResource:
    def __init__(self, queries: Queries) -> None:
        self.queries = queries

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        answers.write(resp, answers.Health("ok"))

    def on_get_ready(self, req: falcon.Request, resp: falcon.Response) -> None:
        readiness = self.queries.readiness()
        answers.write(resp, readiness, 200 if readiness.status == "ready" else 503)


class KeysResource:
    def __init__(self, keys: KeyRing) -> None:
        self.keys = keys

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        answers.write(resp, msgspec.convert(self.keys.jwks(), answers.Jwks))
        resp.cache_control = ["public", "max-age=300"]


class DocumentResource:
    """The OpenAPI document (``openapi.encoded()``), passed in: the document is built from the routes."""

    def __init__(self, document: bytes) -> None:
        self.document = document

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = answers.JSON
        resp.data = self.document
