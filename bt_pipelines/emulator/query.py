"""Run a parsed BTQL `Query` against the store: shapes, version reads, sorting, paging, grouping."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import orjson

from .btql.ast import Ident, Item, Query, QueryError
from .btql.compile import Compiler, Sql
from .ids import format_ts, now_micros
from .rows import COLUMNS
from .store import LIVE, OBJECT_OF_SOURCE, Store, object_key
from .summary import SummaryCache

MAX_LIMIT = 1000  # larger limits are clamped, with a warning (real clients never ask more)
_DUMP = orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY


@dataclass
class Result:
    rows: list[bytes]  # each a JSON object with sorted keys
    cursor: str | None
    columns: list[str]
    warnings: list[str] = field(default_factory=list)
    watermark: str | None = None


@dataclass(frozen=True)
class _Relation:
    """Where rows come from: a FROM item and the conditions that make it the requested snapshot."""

    table: str
    where: str  # with `{a}` for the table alias

    def at(self, alias: str) -> tuple[str, str]:
        return f"{self.table} {alias}", self.where.format(a=alias)


class QueryRunner:
    def __init__(self, store: Store):
        self.store = store
        self.summaries = SummaryCache(store)

    def run(self, query: Query, version: str | None = None) -> Result:
        store = self.store
        kind = OBJECT_OF_SOURCE[query.source]
        for object_id in query.object_ids:
            if store.get_object(kind, object_id) is None:
                raise QueryError(f"no {kind} with id {object_id!r} in this organisation")
        objs = [object_key(query.source, i) for i in query.object_ids]
        warnings: list[str] = []
        limit = MAX_LIMIT if query.limit is None else query.limit
        if limit > MAX_LIMIT:
            warnings.append(f"limit {limit} was clamped to {MAX_LIMIT}")
            limit = MAX_LIMIT
        with store.lock:
            latest = store.max_xact(objs)
            if version is None and query.cursor and _cursor_kind(query.cursor) == "o":
                version = _decode_cursor(query.cursor, "o").partition(":")[2] or None  # the offset's snapshot
            as_of = _as_of(version, latest)
            compiler = Compiler("t", now_micros())
            relation = self._relation(query, objs, as_of, latest, compiler)
            if query.grouped:
                result = self._grouped(query, relation, compiler, limit)
            else:
                result = self._rows(query, relation, compiler, limit, as_of or latest)
        result.warnings = warnings
        result.watermark = as_of or latest
        return result

    # -- where rows come from -------------------------------------------------------------
    def _relation(self, query: Query, objs: list[str], as_of: str | None, latest: str | None,
                  compiler: Compiler) -> _Relation:
        if query.shape == "summary":
            if query.source == "dataset":
                raise QueryError("the summary shape is for project_logs and experiment sources")
            table = self.summaries.table(objs, as_of or latest, query.preview_length,
                                         self._spans(objs, as_of, latest, compiler), compiler.params)
            return _Relation(table, "1")
        spans = self._spans(objs, as_of, latest, compiler)
        if query.shape == "traces":
            if query.filter is None:
                return spans
            inner_from, inner_where = spans.at("u")
            condition = compiler.with_alias("u").condition(query.filter)
            return _Relation(
                spans.table,
                f"{spans.where} AND ({{a}}.obj, {{a}}.root) IN "
                f"(SELECT u.obj, u.root FROM {inner_from} WHERE {inner_where} AND {condition})",
            )
        return spans

    def _spans(self, objs: list[str], as_of: str | None, latest: str | None,
               compiler: Compiler) -> _Relation:
        in_objs = ", ".join(compiler.param(o) for o in objs)
        if as_of is None or (latest is not None and as_of >= latest):
            return _Relation("rows", f"{{a}}.obj IN ({in_objs}) AND {LIVE}")
        v = compiler.param(as_of)
        return _Relation(
            "rows",
            f"{{a}}.obj IN ({in_objs}) AND {{a}}.xact <= {v} AND {{a}}.deleted = 0 AND NOT EXISTS "
            f"(SELECT 1 FROM rows n WHERE n.obj = {{a}}.obj AND n.id = {{a}}.id "
            f"AND n.xact > {{a}}.xact AND n.xact <= {v})",
        )

    # -- plain row queries ----------------------------------------------------------------
    def _rows(self, query: Query, relation: _Relation, c: Compiler, limit: int, snapshot: str | None) -> Result:
        table, where = relation.at("t")
        conditions = [where]
        if query.filter is not None and query.shape != "traces":
            conditions.append(c.condition(query.filter))
        keyset = _keyset_direction(query)
        offset = 0
        if keyset is not None:
            order = f"t.pk {'DESC' if keyset else 'ASC'}"
            if query.cursor:
                last = _decode_cursor(query.cursor, "k")
                conditions.append(f"t.pk {'<' if keyset else '>'} {c.param(last)}")
        else:
            order = ", ".join(
                f"{c.compile(k.expr, allow_aggregates=False).text} {'DESC' if k.descending else 'ASC'}"
                for k in query.sort
            ) + ", t.pk DESC"
            offset = _offset(query.cursor) if query.cursor else 0
        computed = [(i, c.value(i.expr)) for i in query.select or [] if not _is_plain_path(i)]
        extra = "".join(f", {sql.text}" for _, sql in computed)
        sql = (f"SELECT t.pk, t.data{extra} FROM {table} WHERE {' AND '.join(conditions)} "
               f"ORDER BY {order} LIMIT {limit} OFFSET {offset}")
        fetched = self.store.db.execute(sql, c.params).fetchall() if limit else []
        if query.select is None:
            rows = [r[1].encode() if isinstance(r[1], str) else r[1] for r in fetched]
            columns = list(COLUMNS[query.source])
        else:
            rows = [_project(query.select, computed, r) for r in fetched]
            columns = [i.alias for i in query.select]
        cursor = None
        if fetched:
            cursor = _encode_cursor("k", fetched[-1][0]) if keyset is not None else _encode_cursor(
                "o", f"{offset + len(fetched)}:{snapshot or ''}")
        return Result(rows, cursor, columns)

    # -- dimensions / measures ------------------------------------------------------------
    def _grouped(self, query: Query, relation: _Relation, c: Compiler, limit: int) -> Result:
        table, where = relation.at("t")
        conditions = [where]
        if query.filter is not None and query.shape != "traces":
            conditions.append(c.condition(query.filter))
        dims = [(i, c.value(i.expr)) for i in query.dimensions]
        measures = [(i, c.value(i.expr, allow_aggregates=True)) for i in query.measures]
        outputs = dims + measures
        select = ", ".join(f"{sql.text} AS \"c{n}\"" for n, (_, sql) in enumerate(outputs))
        sql = f"SELECT {select} FROM {table} WHERE {' AND '.join(conditions)}"
        if dims:
            sql += " GROUP BY " + ", ".join(f"\"c{n}\"" for n in range(len(dims)))
        aliases = {item.alias: n for n, (item, _) in enumerate(outputs)}
        order = []
        for key in query.sort:
            expr = key.expr
            if isinstance(expr, Ident) and len(expr.path) == 1 and expr.path[0] in aliases:
                text = f"\"c{aliases[expr.path[0]]}\""
            else:
                text = c.compile(expr, allow_aggregates=True).text
            order.append(f"{text} {'DESC' if key.descending else 'ASC'}")
        if order:
            sql += " ORDER BY " + ", ".join(order)
        sql += f" LIMIT {limit}"
        rows = []
        for record in self.store.db.execute(sql, c.params):
            pairs = zip(outputs, record, strict=True)
            out = {item.alias: _convert(value, compiled) for (item, compiled), value in pairs}
            rows.append(orjson.dumps(out, option=_DUMP))
        return Result(rows, None, [i.alias for i, _ in outputs])


def _as_of(version: str | None, latest: str | None) -> str | None:
    if version is None or version == "":
        return None
    text = str(version)
    if not text.isdigit():
        raise QueryError(f"version must be an _xact_id (a string of digits), not {version!r}")
    return text.zfill(len(latest)) if latest and len(text) < len(latest) else text


def _keyset_direction(query: Query) -> bool | None:
    """True/False (descending or not) when the order is by `_pagination_key` alone."""
    if not query.sort:
        return True
    if len(query.sort) == 1 and query.sort[0].expr == Ident(("_pagination_key",)):
        return query.sort[0].descending
    return None


def _encode_cursor(kind: str, value: str) -> str:
    return base64.b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")


def _cursor_kind(cursor: str) -> str | None:
    try:
        return base64.b64decode(cursor + "=" * (-len(cursor) % 4)).decode().partition(":")[0]
    except ValueError:
        return None


def _offset(cursor: str) -> int:
    """An offset cursor is `o:<offset>:<snapshot>`: later pages read the first page's snapshot."""
    text = _decode_cursor(cursor, "o").partition(":")[0]
    if not text.isdigit():
        raise QueryError(f"invalid cursor {cursor!r}")
    return int(text)


def _decode_cursor(cursor: str, kind: str) -> str:
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        found, _, value = raw.partition(":")
    except ValueError as exc:
        raise QueryError(f"invalid cursor {cursor!r}") from exc
    if found != kind:
        raise QueryError("this cursor belongs to a query with another sort; start again without it")
    return value


def _is_plain_path(item: Item) -> bool:
    return isinstance(item.expr, Ident)


def _project(items: list[Item], computed: list[tuple[Item, Sql]], record: tuple[Any, ...]) -> bytes:
    data = orjson.loads(record[1])
    out: dict[str, Any] = {}
    extra = iter(zip(computed, record[2:], strict=True))
    for item in items:
        if _is_plain_path(item):
            value: Any = data
            for part in item.expr.path:  # type: ignore[union-attr]
                value = value.get(part) if isinstance(value, dict) else None
            out[item.alias] = value
        else:
            (_, compiled), raw = next(extra)
            out[item.alias] = _convert(raw, compiled)
    return orjson.dumps(out, option=_DUMP)


def _convert(value: Any, compiled: Sql) -> Any:
    if value is None:
        return None
    if compiled.kind == "ts":
        return format_ts(int(value))
    if compiled.kind == "bool":
        return bool(value)
    if compiled.kind == "json":
        return orjson.loads(value)
    return value
