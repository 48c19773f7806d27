"""The emulator's HTTP API, independent of the transport: a request in, a `Response` out."""

from __future__ import annotations

import re
import secrets
import sqlite3
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from .btql import QueryError, parse_query
from .btql.ast import Query
from .faults import FaultInjector, Faults
from .parquet import rows_to_parquet
from .query import QueryRunner, Result
from .rows import COLUMNS, WriteError
from .store import NotFound, Store

LOGS3_PAYLOAD_MAX_BYTES = 6 * 1024 * 1024
EMULATOR_VERSION = "bt_pipelines-emulator/0.1"
_OBJECT_ROUTE = re.compile(r"^/v1/(project|experiment|dataset)(?:/([^/]+))?$")
_ROW_ROUTE = re.compile(r"^/v1/(project_logs|experiment|dataset)/([^/]+)/(insert|fetch|summarize)$")
_SOURCE_OF_ROW = (("experiment_id", "experiment"), ("dataset_id", "dataset"), ("project_id", "project_logs"))


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status, orjson.dumps(data), "application/json", headers or {})


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    stale_tail: bool = False  # a fault: serve the last row of a page in an older version

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, f"request body is not valid JSON: {exc}") from exc

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[-1] if values else None


class Stats:
    """Request counts, for tests and benchmarks that measure what a client costs."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.rows_served = 0

    def record(self, path: str, status: int, rows: int = 0) -> None:
        with self.lock:
            self.requests[path] += 1
            self.statuses[status] += 1
            self.rows_served += rows

    def to_dict(self) -> dict[str, Any]:
        with self.lock:
            return {"requests": dict(self.requests), "statuses": {str(k): v for k, v in self.statuses.items()},
                    "rows_served": self.rows_served}


class EmulatorApp:
    def __init__(self, store: Store, api_key: str, faults: Faults | None = None):
        self.store = store
        self.api_key = api_key
        self.runner = QueryRunner(store)
        self.faults = FaultInjector(faults)
        self.stats = Stats()
        self.url = ""  # set by the server once it listens

    # -- entry point ----------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        if path in ("/", "/ping"):
            return Response(200, b"pong" if path == "/ping" else b"Braintrust emulator", "text/plain")
        self._authenticate(request)
        route = self._route(request.method, path)
        if route is None:
            raise ApiError(404, f"no route for {request.method} {path}")
        handler, args = route
        return handler(request, *args)

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip(), self.api_key):
            raise ApiError(401, "Invalid API key" if header else "Missing Authorization header")

    def _route(self, method: str, path: str) -> tuple[Any, tuple[Any, ...]] | None:
        fixed = {
            ("POST", "/api/apikey/login"): self.login,
            ("POST", "/api/ai_secret/get"): lambda r: json_response([]),
            ("POST", "/api/base_experiment/get_id"): self.base_experiment,
            ("GET", "/version"): self.version,
            ("POST", "/btql"): self.btql,
            ("POST", "/logs3"): self.logs3,
            ("GET", "/admin/faults"): lambda r: json_response(self.faults.faults.to_dict()),
            ("POST", "/admin/faults"): self.set_faults,
            ("DELETE", "/admin/faults"): self.clear_faults,
            ("GET", "/admin/stats"): lambda r: json_response(self.stats.to_dict()),
            ("DELETE", "/admin/stats"): self.reset_stats,
        }
        if (method, path) in fixed:
            return fixed[(method, path)], ()
        if m := _ROW_ROUTE.match(path):
            source, object_id, action = m.groups()
            if action == "insert" and method == "POST":
                return self.insert, (source, object_id)
            if action == "fetch" and method in ("GET", "POST"):
                return self.fetch, (source, object_id)
            if action == "summarize" and method == "GET" and source != "project_logs":
                return self.summarize, (source, object_id)
        if m := _OBJECT_ROUTE.match(path):
            kind, object_id = m.groups()
            if object_id is None:
                return {"GET": self.list_objects, "POST": self.create_object}.get(method), (kind,)
            handler = {"GET": self.get_object, "PATCH": self.patch_object, "DELETE": self.delete_object}
            return handler.get(method), (kind, object_id)
        return None

    # -- org --------------------------------------------------------------------------------
    def login(self, request: Request) -> Response:
        return json_response({"org_info": [{
            "id": self.store.org_id, "name": self.store.org_name, "api_url": self.url,
            "proxy_url": self.url, "realtime_url": None, "git_metadata": None,
        }]})

    def version(self, request: Request) -> Response:
        return json_response({"version": EMULATOR_VERSION, "brainstore_default": True,
                              "logs3_payload_max_bytes": LOGS3_PAYLOAD_MAX_BYTES})

    # -- objects ----------------------------------------------------------------------------
    def list_objects(self, request: Request, kind: str) -> Response:
        org = request.param("org_name")
        if org and org != self.store.org_name:
            return json_response({"objects": []})
        project_id = request.param("project_id")
        if kind != "project" and project_id is None and request.param("project_name"):
            project = self.store.find_object("project", name=request.param("project_name") or "", project_id=None)
            if project is None:
                return json_response({"objects": []})
            project_id = project["id"]
        name = request.param(f"{kind}_name")
        ids = request.params.get("ids")
        limit = _int_param(request, "limit")
        try:
            objects = self.store.list_objects(
                kind, project_id=project_id, name=name, ids=ids, limit=limit,
                starting_after=request.param("starting_after"), ending_before=request.param("ending_before"))
        except NotFound as exc:
            raise ApiError(400, str(exc)) from exc
        return json_response({"objects": objects})

    def create_object(self, request: Request, kind: str) -> Response:
        body = request.json()
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, f"creating a {kind} needs a non-empty \"name\"")
        project_id = body.get("project_id")
        if kind != "project":
            if not project_id and body.get("project_name"):
                project = self.store.create_object("project", body["project_name"])
                project_id = project["id"]
            if not project_id:
                raise ApiError(400, f"creating a {kind} needs \"project_id\"")
        with self.store.lock:  # check and create as one step
            if kind != "project" and body.get("ensure_new"):
                name = self._fresh_name(kind, name, project_id)
            try:
                return json_response(self.store.create_object(kind, name, project_id, body))
            except NotFound as exc:
                raise ApiError(400, str(exc)) from exc

    def _fresh_name(self, kind: str, name: str, project_id: str) -> str:
        suffix = 0
        candidate = name
        while self.store.find_object(kind, name=candidate, project_id=project_id):
            suffix += 1
            candidate = f"{name}-{suffix}"
        return candidate

    def get_object(self, request: Request, kind: str, object_id: str) -> Response:
        obj = self.store.get_object(kind, object_id)
        if obj is None:
            raise ApiError(404, f"no {kind} with id {object_id!r}")
        return json_response(obj)

    def patch_object(self, request: Request, kind: str, object_id: str) -> Response:
        try:
            return json_response(self.store.update_object(kind, object_id, request.json()))
        except NotFound as exc:
            raise ApiError(404, str(exc)) from exc

    def delete_object(self, request: Request, kind: str, object_id: str) -> Response:
        try:
            return json_response(self.store.delete_object(kind, object_id))
        except NotFound as exc:
            raise ApiError(404, str(exc)) from exc

    # -- rows -------------------------------------------------------------------------------
    def insert(self, request: Request, source: str, object_id: str) -> Response:
        body = self._bounded_json(request)
        events = body.get("events")
        if not isinstance(events, list):
            raise ApiError(400, 'insert takes {"events": [...]}')
        result = self._write([(source, object_id, e) for e in events])
        return json_response({"row_ids": result.row_ids})

    def logs3(self, request: Request) -> Response:
        body = self._bounded_json(request)
        rows = body.get("rows")
        if not isinstance(rows, list):
            raise ApiError(400, 'logs3 takes {"rows": [...], "api_version": 2}')
        events = []
        for row in rows:
            if isinstance(row, str):  # some clients send each row as JSON text
                row = orjson.loads(row)
            if not isinstance(row, dict):
                raise ApiError(400, "each logs3 row must be a JSON object")
            source = next((s for key, s in _SOURCE_OF_ROW if row.get(key)), None)
            if source is None:
                raise ApiError(400, "each logs3 row names its object: project_id, experiment_id or dataset_id")
            key = {"project_logs": "project_id", "experiment": "experiment_id", "dataset": "dataset_id"}[source]
            events.append((source, str(row[key]), row))
        result = self._write(events)
        return json_response({"ids": result.row_ids, "xact_id": result.xact_id})

    def _bounded_json(self, request: Request) -> dict[str, Any]:
        if len(request.body) > LOGS3_PAYLOAD_MAX_BYTES:
            raise ApiError(413, f"payload of {len(request.body)} bytes is over the limit of "
                                f"{LOGS3_PAYLOAD_MAX_BYTES}: split the batch")
        body = request.json()
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        return body

    def _write(self, events: list[tuple[str, str, dict[str, Any]]]):
        try:
            return self.store.write(events)
        except (WriteError, NotFound) as exc:
            raise ApiError(400, str(exc)) from exc

    def fetch(self, request: Request, source: str, object_id: str) -> Response:
        body = request.json() if request.method == "POST" else {
            k: v[-1] for k, v in request.params.items()}
        query = Query(source=source, object_ids=(object_id,), limit=_int(body.get("limit"), "limit"),
                      cursor=body.get("cursor") or None)
        result = self._run(query, body.get("version") or body.get("max_xact_id"))
        payload = b'{"events":[' + b",".join(result.rows) + b'],"cursor":' + orjson.dumps(result.cursor) + b"}"
        return Response(200, payload)

    def summarize(self, request: Request, source: str, object_id: str) -> Response:
        """What `experiment.summarize()` / `dataset.summarize()` read, and nothing more (the SDK is strict)."""
        if self.store.get_object(source, object_id) is None:
            raise ApiError(404, f"no {source} with id {object_id!r}")
        if source == "dataset":
            return json_response({"data_summary": {"total_records": self.store.count_rows(source, object_id)}})
        scores = {name: {"name": name, "score": value, "diff": None, "improvements": None, "regressions": None}
                  for name, value in self.store.score_averages(source, object_id).items()}
        return json_response({"comparison_experiment_name": None, "scores": scores, "metrics": {}})

    def base_experiment(self, request: Request) -> Response:
        experiment = self.store.get_object("experiment", str(request.json().get("id")))
        base_id = (experiment or {}).get("base_exp_id")
        base = self.store.get_object("experiment", base_id) if base_id else None
        if not base:
            raise ApiError(400, "this experiment has no base experiment")
        return json_response({"base_exp_id": base["id"], "base_exp_name": base["name"]})

    # -- queries ----------------------------------------------------------------------------
    def btql(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict) or "query" not in body:
            raise ApiError(400, 'btql takes {"query": ..., "fmt": "json"|"jsonl"|"parquet"}')
        fmt = body.get("fmt") or "json"
        if fmt not in ("json", "jsonl", "parquet"):
            raise ApiError(400, f"unsupported fmt {fmt!r}: use json, jsonl or parquet")
        try:
            query = parse_query(body["query"])
        except (QueryError, ValueError, OverflowError) as exc:
            raise ApiError(400, f"Invalid query: {exc}") from exc
        result = self._run(query, body.get("version"))
        if request.stale_tail and result.rows and query.select is None and not query.grouped:
            result.rows[-1] = self.store.previous_version(query.source, query.object_ids, result.rows[-1])
        headers = {"x-bt-cursor": result.cursor} if result.cursor else {}
        headers["x-bt-row-count"] = str(len(result.rows))
        if fmt == "jsonl":
            body_bytes = b"".join(r + b"\n" for r in result.rows)
            return Response(200, body_bytes, "application/x-ndjson", headers)
        if fmt == "parquet":
            source_columns = COLUMNS[query.source] if query.select is None and not query.grouped else None
            return Response(200, rows_to_parquet(result.rows, result.columns, source_columns),
                            "application/vnd.apache.parquet", headers)
        return Response(200, self._json_answer(result), "application/json", headers)

    def _run(self, query: Query, version: Any) -> Result:
        try:
            return self.runner.run(query, None if version is None else str(version))
        except QueryError as exc:
            raise ApiError(400, f"Invalid query: {exc}") from exc
        except (sqlite3.Error, ValueError, OverflowError) as exc:  # a query the engine cannot evaluate
            raise ApiError(400, f"Invalid query: {exc}") from exc

    def _json_answer(self, result: Result) -> bytes:
        schema = {"type": "array", "items": {"type": "object",
                                             "properties": {c: {} for c in result.columns}}}
        state = {"type": "on", "watermark_xact_id": result.watermark,
                 "last_processed_xact_id": result.watermark, "read_bytes": 0}
        tail = {"schema": schema, "cursor": result.cursor, "realtime_state": state,
                "freshness_state": {"last_processed_xact_id": result.watermark,
                                    "last_considered_xact_id": result.watermark},
                "warnings": result.warnings}
        return b'{"data":[' + b",".join(result.rows) + b"]," + orjson.dumps(tail)[1:]

    # -- admin ------------------------------------------------------------------------------
    def set_faults(self, request: Request) -> Response:
        try:
            faults = Faults.parse(request.json())
        except ValueError as exc:
            raise ApiError(400, str(exc)) from exc
        self.faults.configure(faults)
        return json_response(faults.to_dict())

    def clear_faults(self, request: Request) -> Response:
        self.faults.configure(Faults())
        return json_response(Faults().to_dict())

    def reset_stats(self, request: Request) -> Response:
        self.stats.reset()
        return json_response(self.stats.to_dict())


def _int_param(request: Request, name: str) -> int | None:
    return _int(request.param(name), name)


def _int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ApiError(400, f"{name} must be a whole number, not {value!r}") from exc

