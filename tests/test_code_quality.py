"""The project's static checks are part of the suite: lint, import contracts, types."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "argv",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["lint-imports"],
        ["mypy"],
    ],
    ids=["ruff", "ruff-format", "import-contracts", "mypy"],
)
def test_static_check_passes(argv: list[str]) -> None:
    result = subprocess.run([str(BIN / argv[0]), *argv[1:]], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


STORE_USERS = ("ingress", "sinks", "ops", "flows")


def _store_name_uses(path: Path) -> list[str]:
    """Where a file types a store name that ``topology.stores`` declares (SQL, Redis key, index, collection)."""
    from topology import stores

    tables = {
        t.name for t in (*stores.POSTGRES_TABLES, stores.CREDENTIALS, stores.PARTNER_CLIENTS, stores.PAYMENT_CUSTOMERS)
    }
    sql_table = re.compile(rf"\b(?:FROM|INTO|UPDATE|JOIN|TABLE)\s+({'|'.join(sorted(tables))})\b", re.IGNORECASE)
    key_shapes = tuple(
        key.template.split("{", 1)[0]
        for key in (
            *(kind.key for kind in stores.CACHES.values()),
            stores.RATE_LIMIT,
            stores.IDEMPOTENCY,
            stores.REFRESH_TOKEN,
            stores.SESSION_FAMILY,
            stores.REVOKED_TOKEN,
        )
    )
    indexes = set(stores.INDEXES)
    collections = {stores.AUDIT.name, stores.NOTIFICATION_DOCS.name}
    found: list[str] = []
    tree = ast.parse(path.read_text(), str(path))
    in_fstrings = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
    for node in ast.walk(tree):
        where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if match := sql_table.search(node.value):
                found.append(f"{where}: SQL names table {match.group(1)!r}")
            if node.value in key_shapes and id(node) not in in_fstrings:
                found.append(f"{where}: Redis key shape {node.value!r}")
        if isinstance(node, ast.JoinedStr):
            after_value = False
            for part in node.values:
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    if after_value and (part.value in indexes or part.value.startswith(key_shapes)):
                        found.append(f"{where}: a store name after a prefix: {part.value!r}")
                    after_value = False
                else:
                    after_value = True
        if (
            isinstance(node, ast.Attribute)
            and node.attr in collections
            and isinstance(node.value, ast.Name | ast.Attribute)
        ):
            found.append(f"{where}: Mongo collection by attribute: .{node.attr}")
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and node.slice.value in collections:
            found.append(f"{where}: Mongo collection by name: [{node.slice.value!r}]")
    return found


def test_no_store_name_is_typed_outside_topology() -> None:
    """Tables, key shapes, index and collection names come from ``topology.stores``, never retyped."""
    found = [
        use
        for package in STORE_USERS
        for path in sorted((ROOT / package).rglob("*.py"))
        for use in _store_name_uses(path)
    ]
    assert found == [], "\n".join(found)


def test_the_store_name_check_finds_what_it_looks_for(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        'Q = "SELECT sku FROM products WHERE sku = %s"\n'
        'K = f"{prefix}stock:{sku}"\n'
        'R = prefix + "rl:" + caller\n'
        'I = f"{prefix}products"\n'
        "db.audit_log.insert_one({})\n"
        'db["notifications"].find()\n'
    )
    found = _store_name_uses(sample)
    assert len(found) == 6, found
