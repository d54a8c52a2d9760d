"""One route declaration: the topology's routes, falcon's routing table and the OpenAPI paths agree."""

from __future__ import annotations

import falcon

from ingress import answers, openapi, routes
from ingress.auth.accounts import SCOPES
from ingress.policy import SCOPES as NEEDED
from ingress.policy import open_to_anyone
from ingress.problems import Problem
from topology.processes import LOG_OUT, ROUTES


def test_the_operations_are_the_topologys_routes_and_the_service_endpoints() -> None:
    public = [op for op in routes.OPERATIONS if op.route not in routes.SERVICE]
    assert {(op.method, op.path) for op in public} == {(r.method, r.path) for r in ROUTES}
    assert sorted(op.route.operation for op in public) == sorted(r.operation for r in ROUTES), "each route once"
    assert {op.route for op in routes.OPERATIONS} - set(ROUTES) == set(routes.SERVICE)
    assert not {r.path for r in routes.SERVICE} & {r.path for r in ROUTES}


def test_every_path_answers_exactly_its_declared_methods() -> None:
    for path, operations in routes.by_path().items():
        first = operations[0]
        answered = set(falcon.routing.map_http_methods(first.resource, suffix=first.suffix))
        assert answered == {op.method for op in operations}, path


def test_the_document_has_every_operation_and_types_every_answer() -> None:
    doc = openapi.document()
    documented = {(method.upper(), path) for path, item in doc["paths"].items() for method in item}
    assert documented == {(op.method, op.path) for op in routes.OPERATIONS}
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    schemas = doc["components"]["schemas"]
    for op in routes.OPERATIONS:
        item = doc["paths"][op.path][op.method.lower()]
        for status, answer in item["responses"].items():
            if status in ("204", "304"):
                assert "content" not in answer
                assert status == "204" or op.cacheable, (op.path, "304 only where an ETag is sent")
                continue
            [(media, content)] = answer["content"].items()
            ref = content["schema"].get("$ref")
            if op.answer is not None and int(status) < 400:
                assert (media, ref) == ("application/json", f"#/components/schemas/{op.answer.__name__}")
            elif int(status) >= 400 and (op.answer is None or status not in {str(s) for s, _ in op.statuses}):
                assert (media, ref) == ("application/problem+json", "#/components/schemas/Problem"), (op.path, status)
            assert ref is None or ref.rsplit("/", 1)[1] in schemas
        if op.security == "public":
            assert "security" not in item, op.path
        else:
            assert {"bearer": []} in item["security"], op.path
            assert ({} in item["security"]) == (op.security == "anyone"), op.path


def test_partners_get_their_token_by_the_documented_client_credentials_flow() -> None:
    schemes = openapi.document()["components"]["securitySchemes"]
    flow = schemes["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/oauth/token"
    assert set(flow["scopes"]) == set(SCOPES) == {"catalog:write", "stock:write", "orders:write", "fulfilment:write"}
    assert (schemes["bearer"]["type"], schemes["bearer"]["scheme"]) == ("http", "bearer")
    token = openapi.document()["paths"]["/oauth/token"]["post"]
    assert "application/x-www-form-urlencoded" in token["requestBody"]["content"]


def test_the_strict_query_check_reads_the_parameters_the_query_structs_declare() -> None:
    item = openapi.document()["paths"]["/v1/products"]["get"]
    names = {p["name"] for p in item["parameters"] if p["in"] == "query"}
    assert names == {
        "q",
        "brand",
        "category",
        "tags",
        "min_price",
        "max_price",
        "in_stock",
        "sort",
        "facets",
        "size",
        "from",
        "cursor",
    }


def test_the_operations_open_to_callers_without_a_token_are_the_ones_the_policy_lets_anonymous_take() -> None:
    opened = {(op.method, op.path) for op in routes.OPERATIONS if op.security == "anyone"}
    assert opened == {("GET", "/v1/products"), ("GET", "/v1/products/suggest"), ("GET", "/v1/products/{sku}")}
    for op in routes.OPERATIONS:
        if op.action is not None and op.security != "public":
            assert (op.security == "anyone") == open_to_anyone(op.action), op.path
    assert routes.open_operations() == {(path, method) for method, path in opened}


def test_a_problem_encodes_as_the_document_declares() -> None:
    body = Problem(400, "invalid_scope", error="invalid_scope", title="no").to_dict()
    assert body == {
        "type": "https://shopstream.dev/problems/invalid_scope",
        "title": "no",
        "status": 400,
        "error": "invalid_scope",
    }
    assert set(body) <= set(openapi.document()["components"]["schemas"][answers.Problem.__name__]["properties"])


def test_the_document_lists_the_scope_a_partner_needs_for_each_operation() -> None:
    doc = openapi.document()
    upsert = doc["paths"]["/v1/products/{sku}"]["put"]["security"]
    assert {"oauth2": ["catalog:write"]} in upsert
    assert {"oauth2": ["stock:write"]} in doc["paths"]["/v1/stock/{sku}/adjustments"]["post"]["security"]
    for step in ("shipments", "delivery"):
        assert {"oauth2": ["fulfilment:write"]} in doc["paths"][f"/v1/orders/{{order_id}}/{step}"]["post"]["security"]
    assert {"oauth2": []} in doc["paths"]["/v1/products"]["get"]["security"], "reads need no scope"
    for op in routes.OPERATIONS:
        if op.security == "user or partner":
            [oauth] = [s["oauth2"] for s in doc["paths"][op.path][op.method.lower()]["security"] if "oauth2" in s]
            assert oauth == ([NEEDED[op.action]] if op.action in NEEDED else []), op.path
        if op.security != "public" and op.route is not LOG_OUT:  # logging out is every caller's own
            assert op.action is not None, f"{op.path}: every guarded operation names its policy action"


def test_metrics_are_not_a_route_of_the_api() -> None:
    assert "/metrics" not in openapi.document()["paths"]
    assert all(op.path != "/metrics" for op in routes.OPERATIONS)
