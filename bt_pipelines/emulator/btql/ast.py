"""The query model every BTQL form (SQL text, pipe text, the SDK's JSON tree) parses into."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class QueryError(ValueError):
    """A query the emulator cannot run; the message is sent back as the 400 body."""


@dataclass(frozen=True)
class Ident:
    path: tuple[str, ...]


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Star:
    pass


@dataclass(frozen=True)
class Interval:
    amount: float
    unit: str  # second, minute, hour, day, week

    @property
    def micros(self) -> int:
        return int(self.amount * _UNIT_SECONDS[self.unit] * 1_000_000)


_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}
INTERVAL_UNITS = frozenset(_UNIT_SECONDS)


@dataclass(frozen=True)
class Call:
    name: str  # lower case
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Unary:
    op: str  # not, neg, isnull, isnotnull
    expr: Expr


@dataclass(frozen=True)
class Binary:
    op: str  # and or eq ne gt ge lt le add sub mul div includes like ilike
    left: Expr
    right: Expr


@dataclass(frozen=True)
class In:
    expr: Expr
    values: tuple[Expr, ...]
    negated: bool = False


Expr = Ident | Literal | Star | Interval | Call | Unary | Binary | In


@dataclass(frozen=True)
class Item:
    """A selected expression with the name it gets in the answer."""

    expr: Expr
    alias: str


@dataclass(frozen=True)
class SortKey:
    expr: Expr
    descending: bool


SOURCES = ("project_logs", "experiment", "dataset")
SHAPES = ("spans", "traces", "summary")


@dataclass
class Query:
    source: str = ""
    object_ids: tuple[str, ...] = ()
    shape: str = "spans"
    select: list[Item] | None = None  # None means `*`
    filter: Expr | None = None
    sort: list[SortKey] = field(default_factory=list)
    limit: int | None = None
    cursor: str | None = None
    dimensions: list[Item] = field(default_factory=list)
    measures: list[Item] = field(default_factory=list)
    preview_length: int | None = None

    @property
    def grouped(self) -> bool:
        return bool(self.dimensions or self.measures)

    def check(self) -> None:
        if self.source not in SOURCES:
            raise QueryError(f"unknown source {self.source!r}: use one of {', '.join(SOURCES)}")
        if not self.object_ids:
            raise QueryError(f"{self.source}(...) needs at least one object id")
        if self.source != "experiment" and len(self.object_ids) != 1:
            raise QueryError(f"{self.source}(...) takes exactly one id")
        if self.shape not in SHAPES:
            raise QueryError(f"unknown shape {self.shape!r}: use one of {', '.join(SHAPES)}")
        if self.grouped and self.select is not None:
            raise QueryError("use either select or dimensions/measures, not both")
        if self.grouped and self.cursor:
            raise QueryError("cursors are not available for dimensions/measures queries")
        if self.limit is not None and self.limit < 0:
            raise QueryError("limit must not be negative")


AGGREGATES = frozenset({"count", "sum", "avg", "min", "max"})


def default_alias(expr: Expr) -> str:
    """Name of an unaliased column: an ident's last path part, a function's name."""
    if isinstance(expr, Ident):
        return expr.path[-1]
    if isinstance(expr, Call):
        return expr.name
    raise QueryError("give computed columns a name with `AS <alias>`")


def contains_aggregate(expr: Expr) -> bool:
    if isinstance(expr, Call):
        return expr.name in AGGREGATES or any(contains_aggregate(a) for a in expr.args)
    if isinstance(expr, Unary):
        return contains_aggregate(expr.expr)
    if isinstance(expr, Binary):
        return contains_aggregate(expr.left) or contains_aggregate(expr.right)
    return False
