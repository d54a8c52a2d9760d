"""Schema evolution: the registry matches its lock, and the rules say what breaks readers."""

from __future__ import annotations

import copy

import pytest

from topology import schemas

BASE = {
    "messages": {"Thing@1": "Thing"},
    "definitions": {
        "Thing": {
            "type": "object",
            "properties": {"id": {"type": "string"}, "qty": {"type": "integer"}},
            "required": ["id", "qty"],
        }
    },
}


def changed(edit) -> dict:  # type: ignore[no-untyped-def]
    new = copy.deepcopy(BASE)
    edit(new["definitions"]["Thing"], new)
    return new


def test_the_registry_matches_the_lock() -> None:
    current = schemas.snapshot()
    locked = schemas.read_lock()
    assert schemas.incompatibilities(locked, current) == []
    assert locked == current, "run `shopstream topology schemas --write` after a compatible change"


def test_adding_an_optional_field_is_compatible() -> None:
    new = changed(lambda t, _: t["properties"].update(note={"type": "string", "default": ""}))
    assert schemas.incompatibilities(BASE, new) == []


def test_adding_a_new_message_or_version_is_compatible() -> None:
    new = changed(lambda _t, s: s["messages"].update({"Thing@2": "ThingV2"}))
    assert schemas.incompatibilities(BASE, new) == []


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda t, _: t["properties"].pop("qty"), "Thing.qty was removed"),
        (lambda t, _: t["properties"].update(qty={"type": "number"}), "Thing.qty changed type"),
        (lambda t, _: t["properties"]["qty"].update(maximum=5), "Thing.qty changed type"),
        (
            lambda t, _: (t["properties"].update(sku={"type": "string"}), t["required"].append("sku")),
            "Thing.sku added as required",
        ),
        (lambda _t, s: s["messages"].pop("Thing@1"), "message Thing@1 was removed"),
        (lambda _t, s: s["definitions"].pop("Thing"), "Thing was removed"),
    ],
)
def test_breaking_changes_are_named(edit, problem: str) -> None:  # type: ignore[no-untyped-def]
    found = schemas.incompatibilities(BASE, changed(edit))
    assert any(problem in p for p in found), found


def test_write_lock_refuses_a_breaking_change(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lock = tmp_path / "lock.json"
    schemas.write_lock(lock)
    broken = schemas.read_lock(lock)
    broken["definitions"]["PlaceOrder"]["properties"]["legacy"] = {"type": "string"}
    lock.write_text(__import__("json").dumps(broken))
    with pytest.raises(schemas.SchemaEvolutionError, match=r"PlaceOrder\.legacy was removed"):
        schemas.write_lock(lock)
