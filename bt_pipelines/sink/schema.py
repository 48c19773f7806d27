"""The lake's table schemas.

The schema never drifts: scalars are typed, `scores`/`metrics` are maps to doubles, `tags`
and `span_parents` are string lists, and every free-form JSON value (`input`, `output`,
`metadata`, ...) is stored as JSON text, so new keys inside them never change a file's schema.
Bump SCHEMA_VERSION whenever a column is added, removed or retyped.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import pyarrow as pa

SCHEMA_VERSION = 1

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "xact": pa.int64(),
    "int": pa.int64(),
    "json": pa.string(),
    "number_map": pa.map_(pa.string(), pa.float64()),
    "string_list": pa.list_(pa.string()),
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # a key of ARROW_TYPES
    source: tuple[str, ...] | None = None  # where in the row it comes from (default: its name)
    doc: str = ""

    @property
    def path(self) -> tuple[str, ...]:
        return self.source or (self.name,)


@dataclass(frozen=True)
class TableSchema:
    table: str
    columns: tuple[Column, ...]

    @cached_property
    def arrow(self) -> pa.Schema:
        fields = [pa.field(c.name, ARROW_TYPES[c.kind], nullable=c.name != "id") for c in self.columns]
        return pa.schema(fields, metadata={"bt_pipelines.table": self.table,
                                           "bt_pipelines.schema_version": str(SCHEMA_VERSION)})


_IDS = (
    Column("id", "string", doc="the row's id; unique within a partition"),
    Column("span_id", "string"),
    Column("root_span_id", "string", doc="the trace this span belongs to"),
    Column("span_parents", "string_list", doc="parent span ids; null on a root span"),
    Column("is_root", "bool"),
    Column("created", "timestamp", doc="when the row was first written (UTC); decides its date partition"),
    Column("_xact_id", "xact", doc="transaction id of the row's latest write"),
    Column("_pagination_key", "string", doc="Braintrust's stable, time-ordered row key"),
    Column("project_id", "string"),
)
_SPAN_BODY = (
    Column("span_name", "string", ("span_attributes", "name"), doc="span_attributes.name, for convenience"),
    Column("span_type", "string", ("span_attributes", "type"), doc="span_attributes.type: llm, task, tool, score..."),
    Column("input", "json"),
    Column("output", "json"),
    Column("expected", "json"),
    Column("error", "json"),
    Column("metadata", "json"),
    Column("scores", "number_map", doc="score name -> value in [0, 1] (null when unset)"),
    Column("metrics", "number_map", doc="numeric metrics: tokens, cost, start/end (unix seconds)..."),
    Column("tags", "string_list"),
    Column("span_attributes", "json"),
    Column("context", "json"),
    Column("origin", "json"),
    Column("comments", "json"),
    Column("audit_data", "json"),
    Column("facets", "json"),
    Column("classifications", "json"),
    Column("_async_scoring_state", "json"),
)

_OWNERS = (Column("org_id", "string"), Column("log_id", "string"), Column("experiment_id", "string"),
           Column("dataset_id", "string"), Column("span_type_info", "json"))
_POOL = {c.name: c for c in (*_IDS, *_SPAN_BODY, *_OWNERS)}


def _pick(*names: str, **docs: str) -> tuple[Column, ...]:
    """Columns of the shared definitions, in this order, with a doc of their own where given."""
    return tuple(replace(_POOL[n], doc=docs[n]) if n in docs else _POOL[n] for n in names)


PROJECT_LOGS = TableSchema("project_logs", (*_IDS, *_pick("org_id", "log_id"), *_SPAN_BODY))
EXPERIMENTS = TableSchema("experiments", (*_IDS, *_pick("experiment_id"), *_SPAN_BODY))
DATASETS = TableSchema("datasets", _pick(
    "id", "created", "_xact_id", "_pagination_key", "dataset_id", "project_id", "input", "expected", "metadata",
    "tags", "origin", "span_id", "root_span_id", "is_root", "comments", "audit_data", "facets", "classifications",
    id="the record's id", created="when the record was first written (UTC)",
    _xact_id="transaction id of the record's latest write", _pagination_key=""))
TRACE_SUMMARIES = TableSchema("project_logs_traces", _pick(
    "id", "span_id", "root_span_id", "created", "_xact_id", "_pagination_key", "project_id", "org_id", "log_id",
    "span_name", "span_type", "input", "output", "expected", "error", "metadata", "scores", "metrics", "tags",
    "span_attributes", "span_type_info", "comments", "origin",
    id="the root span's row id: one row per trace", root_span_id="",
    created="the root span's created; decides the date partition",
    _xact_id="the newest _xact_id of any span in the trace", _pagination_key="",
    span_name="the root span's name", span_type="the root span's type", input="the root span's input, whole",
    scores="each score averaged over the trace's spans",
    metrics="summed tokens and cost, llm_calls, tool_calls, errors, start, end, duration"))
EXPERIMENTS_CATALOG = TableSchema("experiments_catalog", (
    Column("id", "string"),
    Column("name", "string"),
    Column("project_id", "string"),
    Column("created", "timestamp"),
    Column("description", "string"),
    Column("base_exp_id", "string", doc="the experiment this one compares against"),
    Column("dataset_id", "string"),
    Column("dataset_version", "string"),
    Column("commit", "string", doc="the git commit the experiment ran on"),
    Column("repo_info", "json"),
    Column("metadata", "json"),
    Column("tags", "string_list"),
    Column("public", "bool"),
    Column("user_id", "string"),
    Column("scores", "number_map", doc="the experiment's score summary (mean of each score)"),
    Column("rows", "int", doc="rows in the experiment"),
    Column("_xact_id", "xact", doc="the experiment's newest _xact_id"),
    Column("lake_key", "string", doc="its partition key and folder: experiment=<lake_key>"),
))
DATASETS_CATALOG = TableSchema("datasets_catalog", (
    Column("id", "string"),
    Column("name", "string"),
    Column("project_id", "string"),
    Column("created", "timestamp"),
    Column("description", "string"),
    Column("metadata", "json"),
    Column("tags", "string_list"),
    Column("user_id", "string"),
    Column("rows", "int", doc="records in the dataset"),
    Column("_xact_id", "xact", doc="the dataset's version: its newest _xact_id"),
    Column("lake_key", "string", doc="its partition key and folder: dataset=<lake_key>"),
))
SCHEMAS = {s.table: s for s in (PROJECT_LOGS, EXPERIMENTS, DATASETS, TRACE_SUMMARIES, EXPERIMENTS_CATALOG,
                                 DATASETS_CATALOG)}
