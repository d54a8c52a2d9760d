"""One error shape for every failure: RFC 9457 problem details (``application/problem+json``).

Every rejection of the ingress (validation, authentication, authorization, rate limits,
an unavailable broker or store) is a ``Problem``; falcon's own HTTP errors, a store that
does not answer (``StoreUnavailable``) and anything unexpected are turned into the same
shape by ``install`` (an unexpected error never leaks details). The body is encoded from
``answers.Problem``, the shape the OpenAPI document declares.
"""

from __future__ import annotations

import logging
from typing import Any

import falcon
import msgspec

from ingress import answers
from ingress.exceptions import StoreUnavailable

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


class Problem(falcon.HTTPError):
    """An HTTP error with a problem type, a title, a detail and optional extra members."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(falcon.code_to_http_status(status), title=title, description=detail, headers=headers)
        self.kind = kind
        self.extra = extra

    def answer(self) -> answers.Problem:
        return answers.Problem(
            type=f"https://shopstream.dev/problems/{self.kind}",
            title=self.title or "",
            status=self.status_code,
            detail=self.description or msgspec.UNSET,
            **self.extra,
        )

    def to_dict(self, obj_type: type = dict) -> dict[str, Any]:
        body: dict[str, Any] = msgspec.to_builtins(self.answer())
        return body


def _falcon_error(req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params: dict[str, Any]) -> None:
    if not isinstance(ex, Problem):
        kind = (ex.title or "error").lower().replace(" ", "-")
        ex = Problem(ex.status_code, kind, ex.title or "error", ex.description, headers=dict(ex.headers or {}))
    resp.status = ex.status
    resp.content_type = PROBLEM_JSON
    resp.data = answers.ENCODER.encode(ex.answer())
    for name, value in dict(ex.headers or {}).items():
        resp.set_header(name, value)


def _unavailable(req: falcon.Request, resp: falcon.Response, ex: StoreUnavailable, params: dict[str, Any]) -> None:
    problem = Problem(503, "unavailable", ex.title, ex.detail, {"Retry-After": "1"})
    _falcon_error(req, resp, problem, params)


def _unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]) -> None:
    log.exception("unexpected error on %s %s", req.method, req.path)
    _falcon_error(
        req, resp, Problem(500, "internal", "internal error", "the error is logged with this request"), params
    )


def install(app: falcon.App) -> None:  # type: ignore[type-arg]
    app.add_error_handler(Exception, _unexpected)
    app.add_error_handler(falcon.HTTPError, _falcon_error)
    app.add_error_handler(StoreUnavailable, _unavailable)
