"""Envelopes: ids derived from the cause, the same in every version."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from flows.envelopes import ID_NAMESPACE, derived_id


@given(st.text(), st.integers(min_value=0, max_value=10_000), st.text(min_size=1, max_size=40))
def test_derived_ids_are_exactly_the_uuid5_ids(cause: str, index: int, kind: str) -> None:
    """Ids must never change across versions: a replay after an upgrade re-emits the same ones."""
    assert derived_id(cause, index, kind) == uuid.uuid5(ID_NAMESPACE, f"{cause}/{index}/{kind}").hex
