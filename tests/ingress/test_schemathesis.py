"""Schemathesis against /openapi.json: every operation, valid and invalid inputs, with and without a token.

No answer may be a 5xx, and every answer must match the document (status codes, content
types, bodies).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from ingress.auth.accounts import SCOPES
from ingress.auth.tokens import Principal
from tests.support.api import Api

pytestmark = pytest.mark.stack


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_no_server_errors_and_answers_match_the_document(api: Api, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", api.client.app)
    partner = Principal("acme", "partner", frozenset({"partner"}), frozenset(SCOPES))
    tokens = {"customer": api.token("ann", "customer"), "partner": api.keys.issue(partner, timedelta(minutes=10))}
    tokens["none"] = "not-a-token"
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            who = ("customer", "partner", "none")[hash(str(case.body) + str(case.path_parameters)) % 3]
            # Schema-valid bodies may still be refused by business rules (an unknown SKU is a 422),
            # so "positive data is accepted" is not a check here; everything else is.
            headers = {"Authorization": f"Bearer {tokens[who]}"}
            if mode is GenerationMode.NEGATIVE and "Authorization" not in (case.headers or {}):
                headers = {}  # the mutation took the token away: giving one back would make the request valid
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        try:
            check()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, f"no valid case for {operation.label}"  # nothing to make invalid
