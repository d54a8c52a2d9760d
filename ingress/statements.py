"""The SQL the ingress runs, composed from the declared tables (``topology.stores``).

Table and column names are identifiers taken from a ``Table`` and checked with
``Table.named``, so a typo fails when the statement is built, at import, never in a query.
"""

from __future__ import annotations

from collections.abc import Iterable

from psycopg import sql

from topology.stores import Table


def columns(table: Table, names: Iterable[str]) -> sql.Composed:
    """``a, b, c``: each name checked to be a column of ``table``."""
    return sql.SQL(", ").join(map(sql.Identifier, table.named(*names)))


def equals(table: Table, column: str) -> sql.Composed:
    """``column = %s``."""
    return sql.SQL("{} = %s").format(columns(table, (column,)))


def equals_any(table: Table, column: str) -> sql.Composed:
    """``column = ANY(%s)``: the parameter is a list."""
    return sql.SQL("{} = ANY(%s)").format(columns(table, (column,)))


def equals_ignoring_case(table: Table, column: str) -> sql.Composed:
    """``lower(column) = lower(%s)`` (an index on ``lower(column)`` serves it)."""
    return sql.SQL("lower({}) = lower(%s)").format(columns(table, (column,)))


def select(table: Table, names: Iterable[str], where: sql.Composable, order_by: str | None = None) -> sql.Composed:
    """``SELECT names FROM table WHERE where [ORDER BY order_by]``."""
    query = sql.SQL("SELECT {} FROM {} WHERE {}").format(columns(table, names), sql.Identifier(table.name), where)
    if order_by is not None:
        query += sql.SQL(" ORDER BY {}").format(columns(table, (order_by,)))
    return query


def insert(table: Table, names: Iterable[str]) -> sql.Composed:
    """``INSERT INTO table (names) VALUES (%s, ...)``, one placeholder per name."""
    checked = table.named(*names)
    return sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(table.name), columns(table, checked), sql.SQL(", ").join(sql.Placeholder() * len(checked))
    )


def delete(table: Table, where: sql.Composable) -> sql.Composed:
    """``DELETE FROM table WHERE where``."""
    return sql.SQL("DELETE FROM {} WHERE {}").format(sql.Identifier(table.name), where)


def newest_first(
    table: Table, names: Iterable[str], where: sql.Composable, by: tuple[str, str], after: bool
) -> sql.Composed:
    """One page of ``SELECT names FROM table WHERE where``, ordered by the columns ``by``, both descending.

    The parameters after ``where``'s: with ``after``, the ``by`` values the page continues below
    (keyset paging: ``(a, b) < (%s, %s)``); then the page's size (``LIMIT %s``).
    """
    first, second = columns(table, by[:1]), columns(table, by[1:])
    if after:
        where = sql.SQL("{} AND ({}, {}) < (%s, %s)").format(where, first, second)
    return sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY {} DESC, {} DESC LIMIT %s").format(
        columns(table, names), sql.Identifier(table.name), where, first, second
    )


def not_null(table: Table, column: str) -> sql.Composed:
    """``column IS NOT NULL``."""
    return sql.SQL("{} IS NOT NULL").format(columns(table, (column,)))


def both(left: sql.Composable, right: sql.Composable) -> sql.Composed:
    """``left AND right``."""
    return sql.SQL("{} AND {}").format(left, right)
