"""Parse the JSON query tree the SDKs send (`{"select":[{"op":"star"}], "from":{...}, ...}`)."""

from __future__ import annotations

from typing import Any

from .ast import (
    INTERVAL_UNITS,
    SOURCES,
    Binary,
    Call,
    Expr,
    Ident,
    In,
    Interval,
    Item,
    Literal,
    Query,
    QueryError,
    SortKey,
    Star,
    Unary,
    default_alias,
)

_BINARY = {"eq", "ne", "gt", "ge", "lt", "le", "add", "sub", "mul", "div", "mod", "includes",
           "like", "ilike"}
_UNARY = {"not", "isnull", "isnotnull", "neg"}


def parse_tree(tree: dict[str, Any]) -> Query:
    if not isinstance(tree, dict):
        raise QueryError("a JSON query must be an object")
    for key in ("pivot", "unpivot", "custom_columns"):
        if tree.get(key):
            raise QueryError(f"{key} is not supported by the emulator")
    query = Query()
    _source(tree.get("from"), query)
    select = tree.get("select")
    if select:
        items = [_item(i) for i in select]
        query.select = None if any(isinstance(i.expr, Star) for i in items) else items
    if tree.get("filter") is not None:
        query.filter = expr(tree["filter"])
    if tree.get("sort"):
        query.sort = [_sort_key(s) for s in tree["sort"]]
    if tree.get("limit") is not None:
        if not isinstance(tree["limit"], int) or isinstance(tree["limit"], bool):
            raise QueryError("limit must be a whole number")
        query.limit = tree["limit"]
    if tree.get("cursor") is not None:
        if not isinstance(tree["cursor"], str):
            raise QueryError("cursor must be a string")
        query.cursor = tree["cursor"]
    query.dimensions = [_item(i) for i in tree.get("dimensions") or []]
    query.measures = [_item(i) for i in tree.get("measures") or []]
    if tree.get("preview_length") is not None:
        query.preview_length = int(tree["preview_length"])
    return query


def _source(node: Any, query: Query) -> None:
    if not isinstance(node, dict) or node.get("op") != "function":
        raise QueryError('"from" must be a function node such as project_logs(\'<id>\')')
    name = _name(node.get("name"))
    if name not in SOURCES:
        raise QueryError(f"unknown source {name!r}: use one of {', '.join(SOURCES)}")
    query.source = name
    ids = []
    for arg in node.get("args") or []:
        if not (isinstance(arg, dict) and arg.get("op") == "literal" and isinstance(arg.get("value"), str)):
            raise QueryError(f"{name}() takes object ids as string literals")
        ids.append(arg["value"])
    query.object_ids = tuple(ids)
    if node.get("shape"):
        query.shape = str(node["shape"])


def _name(node: Any) -> str:
    if isinstance(node, dict) and node.get("op") == "ident":
        parts = node.get("name")
        if isinstance(parts, list) and len(parts) == 1:
            return str(parts[0]).lower()
    if isinstance(node, str):
        return node.lower()
    raise QueryError("a function name must be an ident node")


def _item(node: Any) -> Item:
    if isinstance(node, dict) and node.get("op") == "star":
        return Item(Star(), "*")
    if isinstance(node, dict) and "expr" in node:
        e = expr(node["expr"])
        return Item(e, str(node.get("alias") or default_alias(e)))
    e = expr(node)
    return Item(e, default_alias(e))


def _sort_key(node: Any) -> SortKey:
    if not isinstance(node, dict) or "expr" not in node:
        raise QueryError('sort items look like {"expr": {...}, "dir": "asc"|"desc"}')
    direction = str(node.get("dir", "asc")).lower()
    if direction not in ("asc", "desc"):
        raise QueryError(f"sort dir must be asc or desc, not {direction!r}")
    return SortKey(expr(node["expr"]), direction == "desc")


def expr(node: Any) -> Expr:
    if not isinstance(node, dict) or "op" not in node:
        raise QueryError(f"expected an expression node with an 'op', got {node!r:.80}")
    op = node["op"]
    if op == "ident":
        parts = node.get("name")
        if not isinstance(parts, list) or not parts:
            raise QueryError("ident nodes need a non-empty name list")
        return Ident(tuple(str(p) for p in parts))
    if op == "literal":
        return Literal(node.get("value"))
    if op == "star":
        return Star()
    if op == "interval":
        unit = str(node.get("unit", "")).lower().rstrip("s")
        if unit not in INTERVAL_UNITS:
            raise QueryError(f"unsupported interval unit {unit!r}")
        return Interval(float(node.get("value", 0)), unit)
    if op in ("and", "or"):
        children = node.get("children") or [node.get("left"), node.get("right")]
        parsed = [expr(c) for c in children if c is not None]
        if not parsed:
            raise QueryError(f"{op} needs operands")
        out = parsed[0]
        for child in parsed[1:]:
            out = Binary(op, out, child)
        return out
    if op in _BINARY:
        return Binary(op, expr(node.get("left")), expr(node.get("right")))
    if op in _UNARY:
        return Unary(op, expr(node.get("expr")))
    if op == "in":
        right = node.get("right")
        if isinstance(right, dict) and right.get("op") == "literal" and isinstance(right.get("value"), list):
            values = tuple(Literal(v) for v in right["value"])
        elif isinstance(right, list):
            values = tuple(expr(v) for v in right)
        else:
            raise QueryError("in needs a list on its right")
        return In(expr(node.get("left")), values)
    if op == "function":
        return Call(_name(node.get("name")), tuple(expr(a) for a in node.get("args") or []))
    raise QueryError(f"unsupported expression op {op!r}")

