"""BTQL text for the queries the exporter runs. Values are quoted here and nowhere else."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from ..timefmt import day_start, iso_ms


def quote(value: str) -> str:
    """A BTQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def source(kind: str, object_id: str, shape: str = "spans") -> str:
    return f"{kind}({quote(object_id)}) {shape}"


def created_range(start: datetime, end: datetime) -> str:
    return f"created >= {quote(iso_ms(start))} AND created < {quote(iso_ms(end))}"


def created_on_days(first: date, last: date) -> str:
    """Rows created on the UTC days `first` to `last`, both included."""
    return created_range(day_start(first), day_start(last + timedelta(days=1)))


def all_of(*conditions: str | None) -> str:
    """A filter that holds when every given condition does ('' when none is given)."""
    given = [c for c in conditions if c]
    return given[0] if len(given) == 1 else " AND ".join(f"({c})" for c in given)


def page(kind: str, object_id: str, *, where: str | None, after: str | None, limit: int, shape: str = "spans",
         select: str = "*", preview_length: int | None = None, inclusive: bool = False) -> str:
    """One keyset page: rows from `after` on (`>=` when inclusive) in `_pagination_key` order."""
    keyset = None if after is None else f"_pagination_key {'>=' if inclusive else '>'} {quote(after)}"
    condition = all_of(where, keyset)
    clauses = [f"select: {select}", f"from: {source(kind, object_id, shape)}"]
    if condition:
        clauses.append(f"filter: {condition}")
    clauses += ["sort: _pagination_key asc", f"limit: {limit}"]
    if preview_length is not None:
        clauses.append(f"preview_length: {preview_length}")
    return " | ".join(clauses)


def watermark(kind: str, object_id: str) -> str:
    """The newest `_xact_id` of an object: every later read is pinned to it."""
    return f"measures: max(_xact_id) as watermark | from: {source(kind, object_id)}"


def count(kind: str, object_id: str, where: str = "", shape: str = "spans") -> str:
    query = f"measures: count(1) as n | from: {source(kind, object_id, shape)}"
    return f"{query} | filter: {where}" if where else query


def changed_since(xact_id: str) -> str:
    """Rows written (inserted or updated) after the transaction `xact_id`."""
    return f"_xact_id > {quote(xact_id)}"


def days_summary(kind: str, object_id: str, where: str = "", shape: str = "spans") -> str:
    """Per UTC day of `created`: how many rows match, and the newest `_xact_id` among them."""
    query = ("dimensions: day(created) as day | measures: count(1) as n, max(_xact_id) as top"
             f" | from: {source(kind, object_id, shape)}")
    return f"{query} | filter: {where}" if where else query
