"""The OpenAPI 3.1 document, generated from the same Structs the edge validates with."""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec

from ingress.schemas import REQUESTS, Accepted

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
    _, components = msgspec.json.schema_components([*REQUESTS, Accepted], ref_template="#/components/schemas/{name}")
    components["Problem"] = PROBLEM_SCHEMA
    secured: dict[str, Any] = {"security": [{"bearer": []}]}
    order_id = [{"name": "order_id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}]
    idem = [
        {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string", "maxLength": 255}}
    ]
    sku = [{"name": "sku", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}]
    accepted = {"202": {"description": "accepted: the command is on its way", "content": _json("Accepted")}}
    write_errors = _errors(400, 401, 403, 404, 409, 413, 415, 422, 429, 503)

    def _write(summary: str, schema: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
        body = {"required": True, "content": _json(schema)}
        return {
            "post": {
                "summary": summary,
                "parameters": parameters,
                "requestBody": body,
                "responses": {**accepted, **write_errors},
                **secured,
            }
        }

    def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "schema": schema}

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
                    "responses": {"200": {"description": "the order"}, **_errors(400, 401, 404, 429)},
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
            "/v1/orders/{order_id}/refunds": _write("request a refund", "RefundRequest", order_id + idem),
            "/v1/products": {
                "get": {
                    "summary": "product search with filters and facets",
                    "parameters": [
                        _query("q", {"type": "string", "maxLength": 200}),
                        *(_query(f, {"type": "string", "maxLength": 80}) for f in ("brand", "category", "tags")),
                        _query("min_price", {"type": "integer", "minimum": 0}),
                        _query("max_price", {"type": "integer", "minimum": 0}),
                        _query("size", {"type": "integer", "minimum": 1, "maximum": 100}),
                        _query("from", {"type": "integer", "minimum": 0, "maximum": 10000}),
                    ],
                    "responses": {"200": {"description": "matches and facets"}, **_errors(400, 401, 403, 429, 503)},
                    **secured,
                }
            },
            "/v1/products/{sku}": {"put": _write("add or update a product", "ProductRequest", sku + idem)["post"]},
            "/v1/stock/{sku}": {
                "get": {
                    "summary": "stock level",
                    "parameters": sku,
                    "responses": {"200": {"description": "the level"}, **_errors(400, 401, 403, 404, 429)},
                    **secured,
                }
            },
            "/v1/stock/{sku}/adjustments": _write(
                "adjust stock (partner, admin)", "StockAdjustmentRequest", sku + idem
            ),
            "/v1/users/me": {
                "get": {
                    "summary": "profile",
                    "parameters": [_query("wait", {"type": "number", "minimum": 0})],
                    "responses": {"200": {"description": "the profile"}, **_errors(400, 401, 403, 404, 429)},
                    **secured,
                },
                "patch": _write("update profile", "ProfileRequest", idem)["post"],
            },
            "/v1/users/me/notifications": {
                "get": {
                    "summary": "a user's notifications",
                    "parameters": [_query("limit", {"type": "integer", "minimum": 1, "maximum": 100})],
                    "responses": {"200": {"description": "newest first"}, **_errors(400, 401, 403, 429, 503)},
                    **secured,
                }
            },
            "/healthz": {"get": {"summary": "liveness", "responses": {"200": {"description": "alive"}}}},
            "/metrics": {
                "get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text format"}}}
            },
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
