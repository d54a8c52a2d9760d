"""The registry's shapes, and the schema evolution rules checked against a lock file.

``schemas.lock.json`` holds the reviewed shape of every message type and version.
Compatible changes: a new message type or version, a new optional field (with a
default). Incompatible: removing a type, version or field, changing a field's type or
constraints, adding a required field. ``shopstream topology schemas --write`` updates
the lock and refuses an incompatible change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from topology.exceptions import SchemaEvolutionError
from topology.messages import ALL_MESSAGES

LOCK_FILE = Path(__file__).with_name("schemas.lock.json")
Snapshot = dict[str, Any]


def snapshot() -> Snapshot:
    """The current shape of every message, as JSON Schema components."""
    _, components = msgspec.json.schema_components(ALL_MESSAGES)
    for definition in components.values():
        definition.pop("description", None)
    messages = {f"{m.TYPE}@{m.VERSION}": m.__name__ for m in ALL_MESSAGES}
    shapes = {"messages": dict(sorted(messages.items())), "definitions": dict(sorted(components.items()))}
    # As JSON holds it, the way the lock does: a default's tuple is a list there.
    snapshot: Snapshot = msgspec.json.decode(msgspec.json.encode(shapes))
    return snapshot


def incompatibilities(old: Snapshot, new: Snapshot) -> list[str]:
    """Every change from ``old`` to ``new`` that breaks a reader or a stored message."""
    problems: list[str] = []
    for key in old["messages"]:
        if key not in new["messages"]:
            problems.append(f"message {key} was removed")
    for name, before in old["definitions"].items():
        after = new["definitions"].get(name)
        if after is None:
            problems.append(f"{name} was removed")
            continue
        before_props, after_props = before.get("properties", {}), after.get("properties", {})
        for field, shape in before_props.items():
            if field not in after_props:
                problems.append(f"{name}.{field} was removed")
            elif _strip_default(after_props[field]) != _strip_default(shape):
                problems.append(f"{name}.{field} changed type: {shape} -> {after_props[field]}")
        old_required = set(before.get("required", []))
        for field in after.get("required", []):
            if field not in old_required:
                why = "added as required" if field not in before_props else "became required"
                problems.append(f"{name}.{field} {why} (new fields need a default)")
    return problems


def _strip_default(shape: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in shape.items() if k != "default"}


def read_lock(path: Path = LOCK_FILE) -> Snapshot:
    data: Snapshot = json.loads(path.read_text())
    return data


def write_lock(path: Path = LOCK_FILE, force: bool = False) -> list[str]:
    """Write the current shapes; refuse when they break the locked ones (unless forced)."""
    current = snapshot()
    if path.exists() and not force:
        problems = incompatibilities(read_lock(path), current)
        if problems:
            raise SchemaEvolutionError("incompatible schema changes:\n  " + "\n  ".join(problems))
    path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    return []
