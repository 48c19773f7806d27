"""Compile BTQL expressions into SQLite over the emulator's `rows` table layout.

A row lives in columns `id, xact, pk, created_us, root, is_root` (typed, indexed) and `data`
(the whole row as JSON). Paths into anything else become `json_extract(data, ...)`.
`created` compiles to micros since the epoch, so timestamp literals in any ISO form compare
exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..ids import parse_ts
from .ast import (
    AGGREGATES,
    Binary,
    Call,
    Expr,
    Ident,
    In,
    Interval,
    Literal,
    QueryError,
    Star,
    Unary,
)

_COLUMNS = {
    "id": ("id", "val"),
    "_xact_id": ("xact", "val"),
    "_pagination_key": ("pk", "val"),
    "created": ("created_us", "ts"),
    "root_span_id": ("root", "val"),
    "is_root": ("is_root", "bool"),
}
_CMP = {"eq": "=", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_ARITH = {"add": "+", "sub": "-", "mul": "*", "div": "/", "mod": "%"}
_BUCKET_MICROS = {"minute": 60_000_000, "hour": 3_600_000_000, "day": 86_400_000_000}
_WEEK, _MONDAY_OFFSET = 7 * 86_400_000_000, 4 * 86_400_000_000  # 1970-01-05 was a Monday


@dataclass(frozen=True)
class Sql:
    text: str
    kind: str  # ts (micros) | interval (micros) | bool | json (JSON text) | val


class Compiler:
    """Turns expressions into SQL text; literals go into `params`, never into the text."""

    def __init__(self, alias: str, now_micros: int, params: dict[str, Any] | None = None):
        self.alias = alias
        self.now = now_micros
        self.params = params if params is not None else {}

    def param(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def with_alias(self, alias: str) -> Compiler:
        return Compiler(alias, self.now, self.params)

    # -- public entry points ----------------------------------------------------------------
    def condition(self, expr: Expr) -> str:
        return self.compile(expr, allow_aggregates=False).text

    def value(self, expr: Expr, *, allow_aggregates: bool = False) -> Sql:
        """An expression whose result is sent back: JSON paths come out as JSON text."""
        if isinstance(expr, Ident) and expr.path[0] not in _COLUMNS:
            return Sql(f"({self.alias}.data -> {self.param(_json_path(expr.path))})", "json")
        return self.compile(expr, allow_aggregates=allow_aggregates)

    # -- the compiler ---------------------------------------------------------------------
    def compile(self, expr: Expr, *, allow_aggregates: bool) -> Sql:  # noqa: C901 - one dispatch
        a = self.alias
        if isinstance(expr, Ident):
            if expr.path[0] in _COLUMNS and len(expr.path) == 1:
                column, kind = _COLUMNS[expr.path[0]]
                return Sql(f"{a}.{column}", kind)
            return Sql(f"json_extract({a}.data, {self.param(_json_path(expr.path))})", "val")
        if isinstance(expr, Literal):
            value = expr.value
            if isinstance(value, bool):
                return Sql("1" if value else "0", "bool")
            if value is None:
                return Sql("NULL", "val")
            if isinstance(value, list | dict):
                raise QueryError("lists and objects are only allowed on the right of IN")
            return Sql(self.param(value), "val")
        if isinstance(expr, Interval):
            return Sql(self.param(expr.micros), "interval")
        if isinstance(expr, Star):
            raise QueryError("`*` is only allowed as `select: *` or `count(*)`")
        if isinstance(expr, Unary):
            inner = self.compile(expr.expr, allow_aggregates=allow_aggregates)
            return {
                "not": lambda: Sql(f"(NOT {inner.text})", "bool"),
                "isnull": lambda: Sql(f"({inner.text} IS NULL)", "bool"),
                "isnotnull": lambda: Sql(f"({inner.text} IS NOT NULL)", "bool"),
                "neg": lambda: Sql(f"(-{inner.text})", inner.kind),
            }[expr.op]()
        if isinstance(expr, In):
            left = self.compile(expr.expr, allow_aggregates=allow_aggregates)
            if not expr.values:
                return Sql("1" if expr.negated else "0", "bool")
            values = [self._operand(v, left, allow_aggregates).text for v in expr.values]
            op = "NOT IN" if expr.negated else "IN"
            return Sql(f"({left.text} {op} ({', '.join(values)}))", "bool")
        if isinstance(expr, Binary):
            return self._binary(expr, allow_aggregates)
        if isinstance(expr, Call):
            return self._call(expr, allow_aggregates)
        raise QueryError(f"unsupported expression {expr!r}")

    def _operand(self, expr: Expr, other: Sql, allow_aggregates: bool) -> Sql:
        """Compile `expr` compared with `other`: timestamp literals become micros."""
        if other.kind == "ts" and isinstance(expr, Literal) and not isinstance(expr.value, bool):
            if isinstance(expr.value, str):
                try:
                    return Sql(self.param(parse_ts(expr.value)), "ts")
                except ValueError as exc:
                    raise QueryError(f"cannot compare a timestamp with {expr.value!r}") from exc
            if isinstance(expr.value, int | float):
                return Sql(self.param(int(expr.value * 1_000_000)), "ts")
        return self.compile(expr, allow_aggregates=allow_aggregates)

    def _binary(self, expr: Binary, allow_aggregates: bool) -> Sql:
        if expr.op in ("and", "or"):
            left = self.compile(expr.left, allow_aggregates=allow_aggregates)
            right = self.compile(expr.right, allow_aggregates=allow_aggregates)
            return Sql(f"({left.text} {expr.op.upper()} {right.text})", "bool")
        if expr.op in _CMP:
            left = self.compile(expr.left, allow_aggregates=allow_aggregates)
            right = self._operand(expr.right, left, allow_aggregates)
            if right.kind == "ts" and left.kind != "ts":
                left = self._operand(expr.left, right, allow_aggregates)
            return Sql(f"({left.text} {_CMP[expr.op]} {right.text})", "bool")
        if expr.op == "includes":
            left = self.compile(expr.left, allow_aggregates=False)
            needle = self.compile(expr.right, allow_aggregates=False).text
            if not isinstance(expr.left, Ident) or expr.left.path[0] in _COLUMNS:
                return Sql(f"(instr({left.text}, {needle}) > 0)", "bool")
            path = self.param(_json_path(expr.left.path))
            data = f"{self.alias}.data"
            return Sql(
                f"(CASE json_type({data}, {path}) "
                f"WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each({data}, {path}) WHERE value = {needle}) "
                f"WHEN 'text' THEN instr(json_extract({data}, {path}), {needle}) > 0 ELSE 0 END)",
                "bool",
            )
        if expr.op in ("like", "ilike"):
            left = self.compile(expr.left, allow_aggregates=allow_aggregates).text
            right = self.compile(expr.right, allow_aggregates=allow_aggregates).text
            if expr.op == "ilike":
                left, right = f"lower({left})", f"lower({right})"
            return Sql(f"({left} LIKE {right})", "bool")
        if expr.op in _ARITH:
            left = self.compile(expr.left, allow_aggregates=allow_aggregates)
            right = self.compile(expr.right, allow_aggregates=allow_aggregates)
            kind = "ts" if "ts" in (left.kind, right.kind) and expr.op in ("add", "sub") else "val"
            if left.kind == right.kind == "ts" and expr.op == "sub":
                kind = "interval"
            if expr.op == "div":
                return Sql(f"({left.text} * 1.0 / {right.text})", "val")
            return Sql(f"({left.text} {_ARITH[expr.op]} {right.text})", kind)
        raise QueryError(f"unsupported operator {expr.op!r}")

    def _call(self, expr: Call, allow_aggregates: bool) -> Sql:
        name, args = expr.name, expr.args
        if name in AGGREGATES:
            if not allow_aggregates:
                raise QueryError(f"{name}() is only allowed in measures or with GROUP BY")
            if len(args) != 1:
                raise QueryError(f"{name}() takes one argument")
            if name == "count" and isinstance(args[0], Star | Literal):
                return Sql("COUNT(*)", "val")
            inner = self.compile(args[0], allow_aggregates=False)
            kind = inner.kind if name in ("min", "max") else "val"
            return Sql(f"{name.upper()}({inner.text})", kind)
        if name in ("now", "current_timestamp"):
            return Sql(self.param(self.now), "ts")
        if name in ("minute", "hour", "day", "week", "month", "year"):
            if len(args) != 1:
                raise QueryError(f"{name}() takes one timestamp")
            ts = self.compile(args[0], allow_aggregates=allow_aggregates)
            if ts.kind != "ts":
                raise QueryError(f"{name}() takes a timestamp such as created")
            return Sql(_bucket(name, ts.text), "ts")
        if name in ("lower", "upper", "length", "abs", "round", "coalesce"):
            compiled = [self.compile(arg, allow_aggregates=allow_aggregates) for arg in args]
            if name != "coalesce" and len(compiled) != 1 and name != "round":
                raise QueryError(f"{name}() takes one argument")
            kind = compiled[0].kind if name == "coalesce" and compiled else "val"
            return Sql(f"{name.upper()}({', '.join(c.text for c in compiled)})", kind)
        raise QueryError(
            f"unsupported function {name}(): the emulator knows count, sum, avg, min, max, now, "
            "minute, hour, day, week, month, year, lower, upper, length, abs, round, coalesce"
        )


def _bucket(unit: str, micros: str) -> str:
    if unit in _BUCKET_MICROS:
        size = _BUCKET_MICROS[unit]
        return f"(({micros}) / {size} * {size})"
    if unit == "week":
        return f"((({micros}) - {_MONDAY_OFFSET}) / {_WEEK} * {_WEEK} + {_MONDAY_OFFSET})"
    start = "start of month" if unit == "month" else "start of year"
    return f"(CAST(strftime('%s', ({micros}) / 1000000, 'unixepoch', '{start}') AS INTEGER) * 1000000)"


def _json_path(path: tuple[str, ...]) -> str:
    return "$" + "".join('."' + part.replace('"', '\\"') + '"' for part in path)
