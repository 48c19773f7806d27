"""The `summary` shape: one row per trace, built from its spans into a temporary table.

A summary row is the root span with previews of its input/output/expected/error/metadata
(`preview_length` characters of their JSON text, 124 by default, -1 for whole values),
scores averaged over the trace's spans, metrics aggregated over them, and `_xact_id` the
newest of the trace (so `_xact_id > x` finds traces where any span changed). Tables are
cached per snapshot: paging through a summary builds it once.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

from .btql.ast import QueryError

if TYPE_CHECKING:
    from .query import _Relation
    from .store import Store

DEFAULT_PREVIEW = 124
_PREVIEWED = ("input", "output", "expected", "error", "metadata")
_SUMMED = ("prompt_tokens", "completion_tokens", "total_tokens", "prompt_cached_tokens",
           "prompt_cache_creation_tokens", "completion_reasoning_tokens", "estimated_cost")


def preview(value: Any, length: int) -> Any:
    if value is None or length < 0:
        return value
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    if len(text) <= length:
        return value
    return text[:length]


def summarize(spans: list[dict[str, Any]], preview_length: int) -> dict[str, Any] | None:
    """One trace's summary row; None for a trace whose root span is missing."""
    root = next((s for s in spans if s.get("is_root")), None)
    if root is None:
        return None
    row = dict(root)
    for key in _PREVIEWED:
        row[key] = preview(root.get(key), preview_length)
    scores: dict[str, list[float]] = {}
    metrics: dict[str, float] = {}
    starts, ends = [], []
    counts = {"llm_calls": 0, "tool_calls": 0, "errors": 0}
    for span in spans:
        for name, value in (span.get("scores") or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                scores.setdefault(name, []).append(float(value))
        span_metrics = span.get("metrics") or {}
        for name in _SUMMED:
            value = span_metrics.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                metrics[name] = metrics.get(name, 0) + value
        if isinstance(span_metrics.get("start"), int | float):
            starts.append(span_metrics["start"])
        if isinstance(span_metrics.get("end"), int | float):
            ends.append(span_metrics["end"])
        span_type = (span.get("span_attributes") or {}).get("type")
        counts["llm_calls"] += span_type == "llm"
        counts["tool_calls"] += span_type == "tool"
        counts["errors"] += span.get("error") is not None
    metrics.update(counts)
    if starts:
        metrics["start"] = min(starts)
    if ends:
        metrics["end"] = max(ends)
    if starts and ends:
        metrics["duration"] = metrics["end"] - metrics["start"]
    row["scores"] = {name: sum(v) / len(v) for name, v in sorted(scores.items())} or None
    row["metrics"] = dict(sorted(metrics.items()))
    row["_xact_id"] = max(s["_xact_id"] for s in spans)
    attrs = root.get("span_attributes") or {}
    row["span_type_info"] = {"name": attrs.get("name"), "type": attrs.get("type"),
                             "span_count": len(spans), "has_error": counts["errors"] > 0}
    return row


class SummaryCache:
    def __init__(self, store: Store, size: int = 4):
        self.store = store
        self.size = size
        self.tables: OrderedDict[tuple[Any, ...], str] = OrderedDict()

    def table(self, objs: list[str], as_of: str | None, preview_length: int | None,
              spans: _Relation, params: dict[str, Any]) -> str:
        length = DEFAULT_PREVIEW if preview_length is None else preview_length
        if length < -1:
            raise QueryError("preview_length must be -1 (whole values) or a length")
        key = (tuple(objs), as_of, length)
        if key in self.tables:
            self.tables.move_to_end(key)
            return self.tables[key]
        name = f"temp.summary_{uuid.uuid4().hex}"
        db = self.store.db
        db.execute(f"CREATE TABLE {name} AS SELECT * FROM rows WHERE 0")
        db.executemany(f"INSERT INTO {name} VALUES (?, ?, ?, ?, ?, ?, 1, 0, 1, ?)",
                       self._summaries(spans, params, length))
        self.tables[key] = name
        while len(self.tables) > self.size:
            _, old = self.tables.popitem(last=False)
            db.execute(f"DROP TABLE {old}")
        return name

    def _summaries(self, spans: _Relation, params: dict[str, Any], length: int) -> Iterable[tuple[Any, ...]]:
        table, where = spans.at("t")
        sql = f"SELECT t.obj, t.root, t.created_us, t.data FROM {table} WHERE {where} ORDER BY t.obj, t.root"
        current: tuple[str, str] | None = None
        trace: list[dict[str, Any]] = []
        created = 0
        for obj, root, created_us, data in self.store.db.execute(sql, params).fetchall():
            if (obj, root) != current and trace:
                yield from _summary_row(current, trace, length, created)
                trace = []
            current = (obj, root)
            span = orjson.loads(data)
            trace.append(span)
            if span.get("is_root"):
                created = created_us
        if trace:
            yield from _summary_row(current, trace, length, created)


def _summary_row(key: tuple[str, str] | None, trace: list[dict[str, Any]], length: int,
                 created_us: int) -> Iterable[tuple[Any, ...]]:
    row = summarize(trace, length)
    if row is None or key is None:
        return
    yield (key[0], row["id"], row["_xact_id"], row["_pagination_key"], created_us, key[1],
           orjson.dumps(row, option=orjson.OPT_SORT_KEYS))
