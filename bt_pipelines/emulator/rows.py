"""What a row looks like per object type, and how one write event turns the old row into the new.

Semantics follow Braintrust's insert API: a plain event replaces the row with its `id`;
`_is_merge` deep-merges into it (stopping at `_merge_paths`); `_array_delete` removes values
from arrays; `_object_delete` deletes. A row keeps `created` and `_pagination_key` from its
first insert.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from .ids import format_ts, parse_ts

_SPAN_COLUMNS = (
    "_async_scoring_state", "_pagination_key", "_xact_id", "audit_data", "classifications",
    "comments", "context", "created", "error", "expected", "facets", "id", "input", "is_root",
    "metadata", "metrics", "origin", "output", "project_id", "root_span_id", "scores",
    "span_attributes", "span_id", "span_parents", "tags",
)
COLUMNS: dict[str, tuple[str, ...]] = {
    "project_logs": tuple(sorted((*_SPAN_COLUMNS, "log_id", "org_id"))),
    "experiment": tuple(sorted((*_SPAN_COLUMNS, "experiment_id"))),
    "dataset": (
        "_pagination_key", "_xact_id", "audit_data", "classifications", "comments", "created",
        "dataset_id", "expected", "facets", "id", "input", "is_root", "metadata", "origin",
        "project_id", "root_span_id", "span_id", "tags",
    ),
}
# Filled by the server, never taken from an event.
SYSTEM_FIELDS = frozenset({"_xact_id", "_pagination_key", "is_root", "audit_data", "org_id",
                           "log_id", "project_id", "experiment_id", "dataset_id"})


class WriteError(ValueError):
    """An event the insert API refuses (400)."""


def deep_merge(base: Any, update: Any, stop_paths: set[tuple[str, ...]], path: tuple[str, ...] = ()) -> Any:
    """Merge `update` into `base`; at a path in `stop_paths` the update replaces whole."""
    if not isinstance(base, dict) or not isinstance(update, dict) or path in stop_paths:
        return copy.deepcopy(update)
    out = dict(base)
    for key, value in update.items():
        sub = (*path, key)
        out[key] = deep_merge(base[key], value, stop_paths, sub) if key in base else copy.deepcopy(value)
    return out


def _array_delete(row: dict[str, Any], specs: Any) -> None:
    if not isinstance(specs, list):
        raise WriteError("_array_delete must be a list of {path, delete}")
    for spec in specs:
        if not isinstance(spec, dict) or not isinstance(spec.get("path"), list):
            raise WriteError("_array_delete items look like {\"path\": [...], \"delete\": [...]}")
        parent: Any = row
        *head, last = spec["path"]
        for key in head:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and isinstance(parent.get(last), list):
            doomed = spec.get("delete") or []
            parent[last] = [v for v in parent[last] if v not in doomed]


def normalize_created(value: Any) -> tuple[int, str]:
    """`created` as micros and canonical text; a bad value is the writer's error."""
    try:
        micros = parse_ts(value) if isinstance(value, str) else int(float(value) * 1_000_000)
    except (TypeError, ValueError) as exc:
        raise WriteError(f"cannot read created={value!r} as an ISO-8601 timestamp") from exc
    return micros, format_ts(micros)


def apply_event(
    kind: str,
    owner: dict[str, str],
    existing: dict[str, Any] | None,
    event: dict[str, Any],
    *,
    xact: str,
    new_pagination_key: str,
    now: str,
) -> dict[str, Any]:
    """The row after `event`; `owner` holds the object columns (project_id, experiment_id...)."""
    columns = COLUMNS[kind]
    user = {k: v for k, v in event.items() if k in columns and k not in SYSTEM_FIELDS}
    merge = bool(event.get("_is_merge")) and existing is not None
    if event.get("_merge_paths") is not None and not event.get("_is_merge"):
        raise WriteError("_merge_paths may only be given with _is_merge: true")
    if merge:
        stops = {tuple(p) for p in event.get("_merge_paths") or [] if isinstance(p, list)}
        row = dict(existing)
        for key, value in user.items():
            if key in ("id", "created"):
                continue
            if key == "tags" and ("tags",) not in stops and isinstance(value, list):
                old = row.get("tags") or []
                row[key] = old + [t for t in value if t not in old]  # tags merge as a set union
            else:
                row[key] = deep_merge(row.get(key), value, stops, (key,))
    else:
        row = dict.fromkeys(columns)
        row.update(user)
    if event.get("_array_delete") is not None:
        _array_delete(row, event["_array_delete"])

    row["id"] = str(event.get("id") or (existing or {}).get("id") or uuid.uuid4())
    if existing is not None:
        row["created"] = existing["created"]
        row["_pagination_key"] = existing["_pagination_key"]
    else:
        row["created"] = normalize_created(user["created"])[1] if user.get("created") else now
        row["_pagination_key"] = new_pagination_key
    if "span_id" in columns:
        row["span_id"] = row.get("span_id") or (existing or {}).get("span_id") or str(uuid.uuid4())
        row["root_span_id"] = row.get("root_span_id") or row["span_id"]
    if kind == "dataset":
        row["is_root"] = True
    else:
        parents = row.get("span_parents")
        row["is_root"] = not parents
    row["_xact_id"] = xact
    row.update(owner)
    audit = list((existing or {}).get("audit_data") or [])
    audit.append({"_xact_id": xact, "audit_data": {"action": "merge" if merge else "upsert"},
                  "metadata": event.get("_audit_metadata") or {},
                  "source": event.get("_audit_source") or "api"})
    row["audit_data"] = audit
    return row


def comment_event(event: dict[str, Any], target: dict[str, Any], xact: str, now: str) -> dict[str, Any]:
    """A comment row (`comment` + `origin.id`) becomes a merge appending to its target's comments."""
    comment = {"id": str(event.get("id") or uuid.uuid4()), "_xact_id": xact,
               "created": normalize_created(event["created"])[1] if event.get("created") else now,
               "comment": event["comment"], "source": event.get("_audit_source") or "api"}
    return {"_is_merge": True, "id": target["id"], "comments": [*(target.get("comments") or []), comment]}


def is_comment(event: dict[str, Any]) -> bool:
    origin = event.get("origin")
    return "comment" in event and isinstance(origin, dict) and bool(origin.get("id"))


def check_event(event: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise WriteError("each event must be a JSON object")
    if "id" in event and event["id"] is not None and not isinstance(event["id"], str | int):
        raise WriteError("id must be a string")
    return event

