"""The OpenAPI 3.1 document, generated from the operations of ``routes.py`` and their Structs.

Every operation the app routes is in it, with the Struct its body is validated with, the
Struct its answer is encoded from, its query parameters (the fields of its query Struct),
who may call it (with the OAuth2 scope a partner's token needs, from the policy's table),
and every problem it may answer.
"""

from __future__ import annotations

import string
from functools import cache
from http import HTTPStatus
from typing import Any

import msgspec

from ingress import answers, policy, products
from ingress.auth.accounts import SCOPES
from ingress.problems import PROBLEM_JSON
from ingress.routes import OPERATIONS, Operation
from topology.processes import ISSUE_CLIENT_TOKEN, LOG_IN

REF = "#/components/schemas/{name}"
PROBLEM = {"$ref": REF.format(name=answers.Problem.__name__)}
#: The schema of each path parameter, by name.
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "order_id": {"type": "string", "maxLength": 64},
    "sku": {"type": "string", "maxLength": 64},
    "address_id": {"type": "string", "maxLength": 64},
    "device_id": {"type": "string", "maxLength": 64},
    "user_id": {"type": "string", "maxLength": 64},
    "payment_method_id": {"type": "string", "maxLength": 64},
}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
}
IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": products.MAX_IF_NONE_MATCH},
    "description": "the ETag of the answer held: 304, no body, while it is still the answer",
}
SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": f"a user's access token ({LOG_IN.method} {LOG_IN.path})",
    },
    "oauth2": {
        "type": "oauth2",
        "description": "a partner's access token: OAuth2 client credentials (RFC 6749)",
        "flows": {"clientCredentials": {"tokenUrl": ISSUE_CLIENT_TOKEN.path, "scopes": SCOPES}},
    },
}


def _ref(struct: type[msgspec.Struct]) -> dict[str, str]:
    return {"$ref": REF.format(name=struct.__name__)}


def _query_parameters(query: type[msgspec.Struct]) -> list[dict[str, Any]]:
    _, components = msgspec.json.schema_components([query], ref_template=REF)
    fields = components[query.__name__]
    required = set(fields.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": field}
        for name, field in fields["properties"].items()
    ]


def _parameters(op: Operation) -> list[dict[str, Any]]:
    names = [name for _, name, _, _ in string.Formatter().parse(op.path) if name]
    parameters = [{"name": n, "in": "path", "required": True, "schema": PATH_PARAMETERS[n]} for n in names]
    if op.query is not None:
        parameters += _query_parameters(op.query)
    if op.idempotent:
        parameters.append(IDEMPOTENCY_KEY)
    if op.cacheable:
        parameters.append(IF_NONE_MATCH)
    return parameters


def _responses(op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, description in op.statuses:
        responses[str(status)] = {"description": description}
        if op.answer is not None:
            responses[str(status)]["content"] = {answers.JSON: {"schema": _ref(op.answer)}}
        elif op.schema is not None:
            media, schema = op.schema
            responses[str(status)]["content"] = {media: {"schema": schema}}
    if op.cacheable:
        responses["304"] = {"description": "not modified: the ETag sent is still the answer's"}
    # Any token may be of an account suspended or closed: every operation that reads one may answer 403.
    problems = sorted({*op.problems, 403}) if op.security != "public" else op.problems
    for status in problems:
        responses[str(status)] = {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": PROBLEM}},
        }
    return responses


def _operation(op: Operation) -> dict[str, Any]:
    item: dict[str, Any] = {
        "operationId": op.route.operation,
        "summary": op.route.summary,
        "tags": [op.resource.__module__.rsplit(".", 1)[-1]],
    }
    parameters = _parameters(op)
    if parameters:
        item["parameters"] = parameters
    if op.request is not None:
        item["requestBody"] = {"required": op.body_required, "content": {op.media: {"schema": _ref(op.request)}}}
    item["responses"] = _responses(op)
    if op.security != "public":
        item["security"] = _security(op)
    return item


def _security(op: Operation) -> list[dict[str, list[str]]]:
    """A user's Bearer token; for partners too, an OAuth2 token with the scope the policy needs; or none at all."""
    if op.security == "user":
        return [{"bearer": []}]
    scope = policy.SCOPES.get(op.action) if op.action else None
    tokens: list[dict[str, list[str]]] = [{"bearer": []}, {"oauth2": [scope] if scope else []}]
    return [{}, *tokens] if op.security == "anyone" else tokens  # {}: no token at all


@cache
def document() -> dict[str, Any]:
    structs = {s for op in OPERATIONS for s in (op.request, op.answer) if s is not None}
    _, components = msgspec.json.schema_components(
        sorted(structs | {answers.Problem}, key=lambda s: s.__name__), ref_template=REF
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Shopstream API", "version": "1.0.0"},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES},
    }


@cache
def encoded() -> bytes:
    """The document as JSON, encoded once."""
    return msgspec.json.encode(document())
