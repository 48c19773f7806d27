"""Parse the two text forms of a query: Braintrust SQL and BTQL clauses (`select: * | from: ...`)."""

from __future__ import annotations

import re

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
    contains_aggregate,
    default_alias,
)
from .lexer import Token, tokenize

_COMPARE = {"=": "eq", "==": "eq", "!=": "ne", "<>": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
_CLAUSES = ("select", "from", "filter", "sort", "limit", "cursor", "dimensions", "measures",
            "preview_length")


class _Parser:
    def __init__(self, tokens: list[Token], text: str):
        self.tokens = tokens
        self.text = text
        self.i = 0

    # -- token helpers -------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, n: int = 1) -> Token:
        return self.tokens[min(self.i + n, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tok
        self.i += 1
        return tok

    def fail(self, what: str) -> QueryError:
        tok = self.tok
        near = "end of query" if tok.kind == "end" else repr(self.text[tok.pos : tok.pos + 20])
        return QueryError(f"{what} at position {tok.pos} (near {near})")

    def expect_op(self, op: str) -> None:
        if not self.tok.is_op(op):
            raise self.fail(f"expected {op!r}")
        self.advance()

    def accept_op(self, op: str) -> bool:
        if self.tok.is_op(op):
            self.advance()
            return True
        return False

    def accept_kw(self, *words: str) -> bool:
        if self.tok.is_kw(*words):
            self.advance()
            return True
        return False

    # -- expressions ---------------------------------------------------------------------
    def expr(self) -> Expr:
        left = self.and_expr()
        while self.accept_kw("or"):
            left = Binary("or", left, self.and_expr())
        return left

    def and_expr(self) -> Expr:
        left = self.not_expr()
        while self.accept_kw("and"):
            left = Binary("and", left, self.not_expr())
        return left

    def not_expr(self) -> Expr:
        if self.accept_kw("not"):
            return Unary("not", self.not_expr())
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.additive()
        tok = self.tok
        if tok.kind == "op" and tok.value in _COMPARE:
            self.advance()
            return Binary(_COMPARE[tok.value], left, self.additive())
        if self.accept_kw("is"):
            negated = self.accept_kw("not")
            if not self.accept_kw("null"):
                raise self.fail("expected NULL after IS")
            return Unary("isnotnull" if negated else "isnull", left)
        negated = False
        if tok.is_kw("not") and self.peek().is_kw("in", "includes", "like", "ilike"):
            self.advance()
            negated = True
        if self.accept_kw("in"):
            return In(left, self.value_list(), negated)
        for word in ("includes", "like", "ilike"):
            if self.accept_kw(word):
                node = Binary(word, left, self.additive())
                return Unary("not", node) if negated else node
        return left

    def value_list(self) -> tuple[Expr, ...]:
        close = {"[": "]", "(": ")"}.get(self.tok.value) if self.tok.kind == "op" else None
        if close is None:
            raise self.fail("expected a list in [...] or (...) after IN")
        self.advance()
        items: list[Expr] = []
        while not self.tok.is_op(close):
            items.append(self.expr())
            if not self.accept_op(","):
                break
        self.expect_op(close)
        return tuple(items)

    def additive(self) -> Expr:
        left = self.multiplicative()
        while self.tok.is_op("+", "-"):
            op = "add" if self.advance().value == "+" else "sub"
            left = Binary(op, left, self.multiplicative())
        return left

    def multiplicative(self) -> Expr:
        left = self.unary()
        while self.tok.is_op("*", "/", "%"):
            op = {"*": "mul", "/": "div", "%": "mod"}[self.advance().value]
            left = Binary(op, left, self.unary())
        return left

    def unary(self) -> Expr:
        if self.accept_op("-"):
            operand = self.unary()
            if isinstance(operand, Literal) and isinstance(operand.value, int | float):
                return Literal(-operand.value)
            return Unary("neg", operand)
        return self.primary()

    def primary(self) -> Expr:
        tok = self.tok
        if tok.kind in ("num", "str"):
            self.advance()
            return Literal(tok.value)
        if tok.is_kw("true", "false", "null"):
            self.advance()
            return Literal({"true": True, "false": False, "null": None}[tok.value])
        if tok.is_kw("interval"):
            self.advance()
            return self.interval()
        if self.accept_op("("):
            inner = self.expr()
            self.expect_op(")")
            return inner
        if tok.is_op("["):
            return Call("array", self.value_list())
        if tok.kind == "ident":
            if self.peek().is_op("("):
                return self.call()
            return self.path()
        raise self.fail("expected an expression")

    def interval(self) -> Interval:
        tok = self.advance()
        if tok.kind == "str":  # INTERVAL '7 days'
            m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*", tok.value)
            if not m:
                raise QueryError(f"cannot read interval {tok.value!r}")
            amount, unit = float(m.group(1)), m.group(2)
        elif tok.kind == "num":
            amount = tok.value
            unit_tok = self.advance()
            if unit_tok.kind not in ("ident", "kw"):
                raise self.fail("expected an interval unit")
            unit = str(unit_tok.value)
        else:
            raise self.fail("expected a number after INTERVAL")
        unit = unit.lower().rstrip("s")
        if unit not in INTERVAL_UNITS:
            raise QueryError(f"unsupported interval unit {unit!r}: use {', '.join(INTERVAL_UNITS)}")
        return Interval(amount, unit)

    def path(self) -> Ident:
        parts = [str(self.advance().value)]
        while True:
            if self.tok.is_op(".") and self.peek().kind in ("ident", "kw"):
                self.advance()
                parts.append(str(self.advance().value))
            elif self.tok.is_op("[") and self.peek().kind in ("str", "num"):
                self.advance()
                parts.append(str(self.advance().value))
                self.expect_op("]")
            else:
                return Ident(tuple(parts))

    def call(self) -> Call:
        name = str(self.advance().value).lower()
        self.expect_op("(")
        args: list[Expr] = []
        while not self.tok.is_op(")"):
            if self.tok.is_op("*"):
                self.advance()
                args.append(Star())
            elif self.tok.kind == "ident" and self.peek().is_op("=>"):
                key = str(self.advance().value).lower()
                self.advance()
                args.append(Binary("named", Literal(key), self.expr()))
            else:
                args.append(self.expr())
            if not self.accept_op(","):
                break
        self.expect_op(")")
        return Call(name, tuple(args))

    # -- clause pieces shared by both forms ----------------------------------------------
    def items(self) -> list[Item]:
        items = [self.item()]
        while self.accept_op(","):
            items.append(self.item())
        return items

    def item(self) -> Item:
        if self.tok.is_op("*"):
            self.advance()
            return Item(Star(), "*")
        expr = self.expr()
        if self.accept_kw("as"):
            tok = self.advance()
            if tok.kind not in ("ident", "kw", "str"):
                raise self.fail("expected a name after AS")
            return Item(expr, str(tok.value))
        return Item(expr, default_alias(expr))

    def sort_keys(self) -> list[SortKey]:
        keys = [self.sort_key()]
        while self.accept_op(","):
            keys.append(self.sort_key())
        return keys

    def sort_key(self) -> SortKey:
        expr = self.expr()
        descending = False
        if self.tok.is_kw("asc", "desc"):
            descending = self.advance().value == "desc"
        return SortKey(expr, descending)

    def integer(self, what: str) -> int:
        tok = self.advance()
        if tok.kind != "num" or not isinstance(tok.value, int):
            raise QueryError(f"{what} must be a whole number")
        return tok.value

    def source(self, query: Query) -> None:
        if self.tok.kind != "ident" or not self.peek().is_op("("):
            raise self.fail("expected a source such as project_logs('<project id>')")
        call = self.call()
        if call.name not in SOURCES:
            raise QueryError(f"unknown source {call.name!r}: use one of {', '.join(SOURCES)}")
        query.source = call.name
        ids: list[str] = []
        for arg in call.args:
            if isinstance(arg, Binary) and arg.op == "named":
                key = arg.left.value  # type: ignore[union-attr]
                if key != "shape" or not isinstance(arg.right, Literal):
                    raise QueryError(f"unsupported argument {key!r} to {call.name}()")
                query.shape = str(arg.right.value)
            elif isinstance(arg, Literal) and isinstance(arg.value, str):
                ids.append(arg.value)
            else:
                raise QueryError(f"{call.name}() takes object ids as string literals")
        query.object_ids = tuple(ids)
        if self.tok.kind == "ident" and not self.peek().is_op(":") and str(self.tok.value).lower() != "cursor":
            query.shape = str(self.advance().value).lower()


def _is_clause_start(p: _Parser) -> bool:
    return p.tok.kind in ("ident", "kw") and p.peek().is_op(":")


def parse_btql(text: str) -> Query:
    """BTQL clauses, separated by newlines or ` | ` (braintrust-migrate, bt)."""
    p = _Parser(tokenize(text, double_quotes_are_strings=True), text)
    query = Query()
    seen: set[str] = set()
    while p.tok.kind != "end":
        if p.accept_op("|"):
            continue
        if not _is_clause_start(p):
            raise p.fail("expected a clause such as `select:` or `filter:`")
        name = str(p.advance().value).lower()
        p.advance()  # ':'
        if name not in _CLAUSES:
            raise QueryError(f"unsupported clause {name!r}: use one of {', '.join(_CLAUSES)}")
        if name in seen:
            raise QueryError(f"clause {name!r} given twice")
        seen.add(name)
        _btql_clause(p, name, query)
        if p.tok.kind != "end" and not p.tok.is_op("|") and not _is_clause_start(p):
            raise p.fail(f"unexpected text after the {name} clause")
    if "from" not in seen:
        raise QueryError("the query has no `from:` clause")
    return query


def _btql_clause(p: _Parser, name: str, query: Query) -> None:
    if name == "select":
        items = p.items()
        query.select = None if any(isinstance(i.expr, Star) for i in items) else items
        if query.select is None and len(items) > 1:
            raise QueryError("select: * cannot be combined with other columns")
    elif name == "from":
        p.source(query)
    elif name == "filter":
        query.filter = p.expr()
    elif name == "sort":
        query.sort = p.sort_keys()
    elif name == "limit":
        query.limit = p.integer("limit")
    elif name == "cursor":
        tok = p.advance()
        if tok.kind == "kw" and tok.value == "null":
            query.cursor = None
        elif tok.kind == "str":
            query.cursor = tok.value
        else:
            raise QueryError('cursor must be a quoted string: cursor: "<cursor>"')
    elif name == "dimensions":
        query.dimensions = p.items()
    elif name == "measures":
        query.measures = p.items()
    elif name == "preview_length":
        query.preview_length = p.integer("preview_length") if not p.accept_op("-") else -p.integer(
            "preview_length"
        )


def parse_sql(text: str) -> Query:
    """`SELECT ... FROM source(...) WHERE ... GROUP BY ... ORDER BY ... LIMIT n`."""
    p = _Parser(tokenize(text, double_quotes_are_strings=False), text)
    query = Query()
    if not p.accept_kw("select"):
        raise p.fail("expected SELECT")
    items = p.items()
    if not p.accept_kw("from"):
        raise p.fail("expected FROM")
    p.source(query)
    if p.accept_kw("where"):
        query.filter = p.expr()
    group_by: list[Expr] = []
    if p.accept_kw("group"):
        if not p.accept_kw("by"):
            raise p.fail("expected BY after GROUP")
        group_by = [p.expr()]
        while p.accept_op(","):
            group_by.append(p.expr())
    if p.accept_kw("order"):
        if not p.accept_kw("by"):
            raise p.fail("expected BY after ORDER")
        query.sort = p.sort_keys()
    if p.accept_kw("limit"):
        query.limit = p.integer("LIMIT")
    p.accept_op(";")
    if p.tok.kind != "end":
        if p.tok.is_kw("cursor") or (p.tok.kind == "ident" and str(p.tok.value).lower() == "cursor"):
            raise QueryError("cursors are not available in SQL queries: use BTQL for cursor paging")
        raise p.fail("unsupported SQL (no joins, subqueries, unions, HAVING or windows)")
    _sql_select(query, items, group_by)
    return query


def _sql_select(query: Query, items: list[Item], group_by: list[Expr]) -> None:
    stars = [i for i in items if isinstance(i.expr, Star)]
    aggregated = [i for i in items if contains_aggregate(i.expr)]
    if not group_by and not aggregated:
        if stars and len(items) > 1:
            raise QueryError("SELECT * cannot be combined with other columns")
        query.select = None if stars else items
        return
    if stars:
        raise QueryError("SELECT * cannot be used with GROUP BY or aggregates")
    by_alias = {i.alias: i for i in items}
    dims: list[Item] = []
    for expr in group_by:
        if isinstance(expr, Literal) and isinstance(expr.value, int) and 0 < expr.value <= len(items):
            dims.append(items[expr.value - 1])
        elif isinstance(expr, Ident) and len(expr.path) == 1 and expr.path[0] in by_alias:
            dims.append(by_alias[expr.path[0]])
        else:
            match = next((i for i in items if i.expr == expr), None)
            dims.append(match or Item(expr, default_alias(expr)))
    for item in items:
        if item in dims or item in aggregated:
            continue
        raise QueryError(f"column {item.alias!r} must be in GROUP BY or inside an aggregate")
    query.dimensions = dims
    query.measures = aggregated
