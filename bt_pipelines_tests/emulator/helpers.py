"""Small helpers for emulator tests: run a query straight against a store."""

from __future__ import annotations

from typing import Any

import orjson

from bt_pipelines.emulator.btql import parse_query
from bt_pipelines.emulator.query import QueryRunner
from bt_pipelines.emulator.store import Store


def run(store: Store, query: Any, version: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    result = QueryRunner(store).run(parse_query(query), version)
    return [orjson.loads(r) for r in result.rows], result.cursor


def log(store: Store, project: str, *events: dict[str, Any]) -> str:
    """Write events to a project's logs in one transaction; returns its _xact_id."""
    return store.write([("project_logs", project, e) for e in events]).xact_id
