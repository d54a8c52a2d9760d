"""The OpenAPI 3.1 document, generated from the same Structs the edge validates with."""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec

from ingress.schemas import Accepted, CancelOrderRequest, PlaceOrderRequest

PROBLEM = {"$ref": "#/components/schemas/Problem"}
PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
}


def _errors(*codes: int) -> dict[str, Any]:
    return {
        str(c): {"description": "problem", "content": {"application/problem+json": {"schema": PROBLEM}}} for c in codes
    }


def _json(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}


@cache
def document() -> dict[str, Any]:
    _, components = msgspec.json.schema_components(
        [PlaceOrderRequest, CancelOrderRequest, Accepted], ref_template="#/components/schemas/{name}"
    )
    components["Problem"] = PROBLEM_SCHEMA
    secured: dict[str, Any] = {"security": [{"bearer": []}]}
    order_id = [{"name": "order_id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}]
    idem = [
        {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string", "maxLength": 255}}
    ]
    accepted = {"202": {"description": "accepted: the command is on its way", "content": _json("Accepted")}}
    write_errors = _errors(400, 401, 403, 404, 409, 413, 415, 422, 429, 503)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Shopstream API", "version": "1.0.0"},
        "paths": {
            "/v1/orders": {
                "post": {
                    "summary": "place an order",
                    "parameters": idem,
                    "requestBody": {"required": True, "content": _json("PlaceOrderRequest")},
                    "responses": {**accepted, **write_errors},
                    **secured,
                }
            },
            "/v1/orders/{order_id}": {
                "get": {
                    "summary": "order status and history",
                    "parameters": [
                        *order_id,
                        {"name": "wait", "in": "query", "required": False, "schema": {"type": "number", "minimum": 0}},
                    ],
                    "responses": {"200": {"description": "the order"}, **_errors(401, 404, 429)},
                    **secured,
                }
            },
            "/v1/orders/{order_id}/cancel": {
                "post": {
                    "summary": "cancel an order",
                    "parameters": [*order_id, *idem],
                    "requestBody": {"required": True, "content": _json("CancelOrderRequest")},
                    "responses": {**accepted, **write_errors},
                    **secured,
                }
            },
            "/healthz": {"get": {"summary": "liveness", "responses": {"200": {"description": "alive"}}}},
            "/readyz": {
                "get": {
                    "summary": "readiness",
                    "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}},
                }
            },
            "/.well-known/jwks.json": {
                "get": {"summary": "signing keys", "responses": {"200": {"description": "JWKS"}}}
            },
        },
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
