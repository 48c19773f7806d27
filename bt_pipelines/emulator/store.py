"""The emulator's state: an organisation's objects and every version of every row, in SQLite.

Every write adds a version (a tombstone for a delete); the newest version of a row is
flagged `latest`, so present-time reads use small partial indexes while `version` reads
(as of an `_xact_id`) walk the history. One connection, one lock: SQLite does the work,
Python threads only take turns.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from .ids import MAX_ROWS_PER_XACT, XactClock, format_ts, now_micros, pagination_key
from .rows import (
    WriteError,
    apply_event,
    check_event,
    comment_event,
    is_comment,
    normalize_created,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, project_id TEXT, name TEXT NOT NULL,
    seq INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS objects_by_kind ON objects(kind, project_id, seq);
CREATE TABLE IF NOT EXISTS rows (
    obj TEXT NOT NULL, id TEXT NOT NULL, xact TEXT NOT NULL, pk TEXT NOT NULL,
    created_us INTEGER NOT NULL, root TEXT, is_root INTEGER NOT NULL,
    deleted INTEGER NOT NULL, latest INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (obj, id, xact));
CREATE INDEX IF NOT EXISTS rows_live_pk ON rows(obj, pk) WHERE latest = 1 AND deleted = 0;
CREATE INDEX IF NOT EXISTS rows_live_created ON rows(obj, created_us) WHERE latest = 1 AND deleted = 0;
CREATE INDEX IF NOT EXISTS rows_live_root ON rows(obj, root) WHERE latest = 1 AND deleted = 0;
CREATE INDEX IF NOT EXISTS rows_live_xact ON rows(obj, xact) WHERE latest = 1 AND deleted = 0;
CREATE INDEX IF NOT EXISTS rows_history ON rows(obj, pk, xact);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_INDEX_STATEMENTS = [line for line in _SCHEMA.splitlines() if line.startswith("CREATE INDEX IF NOT EXISTS rows_")]
_SECONDARY_INDEXES = [statement.split()[5] for statement in _INDEX_STATEMENTS]
LIVE = "{a}.latest = 1 AND {a}.deleted = 0"
KINDS = ("project", "experiment", "dataset")
OBJECT_OF_SOURCE = {"project_logs": "project", "experiment": "experiment", "dataset": "dataset"}


def dump_row(data: dict[str, Any]) -> bytes:
    """A row as stored and served: compact JSON, keys sorted (any depth of nesting)."""
    try:
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # deeper than orjson's 254 levels
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class NotFound(LookupError):
    pass


def object_key(source: str, object_id: str) -> str:
    return f"{source}:{object_id}"


@dataclass(frozen=True)
class WriteResult:
    row_ids: list[str]
    xact_id: str


class Store:
    def __init__(self, path: str = ":memory:", *, org_name: str = "demo-org"):
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA page_size = 16384")  # rows are ~1.5 KB: big pages load them faster
        self.db.executescript(_SCHEMA)
        self.db.execute("PRAGMA case_sensitive_like = ON")
        if path != ":memory:":
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
        self.lock = threading.RLock()
        self.org_id = self._meta("org_id", str(uuid.uuid4()))
        self.org_name = self._meta("org_name", org_name)
        last = self.db.execute("SELECT max(xact) FROM rows").fetchone()[0]
        self.clock = XactClock(int(last) if last else 0)
        self._max_xact: dict[str, str] = dict(
            self.db.execute("SELECT obj, max(xact) FROM rows GROUP BY obj").fetchall()
        )
        self._seq = self.db.execute("SELECT coalesce(max(seq), 0) FROM objects").fetchone()[0]

    def _meta(self, key: str, default: str) -> str:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row:
            return row[0]
        self.db.execute("INSERT INTO meta VALUES (?, ?)", (key, default))
        return default

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.db.execute("BEGIN")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    # -- objects (projects, experiments, datasets) ---------------------------------------
    def create_object(self, kind: str, name: str, project_id: str | None = None,
                      fields: dict[str, Any] | None = None, *, created: str | None = None) -> dict[str, Any]:
        """Create, or return the live object of that name (the real API's register semantics)."""
        with self.lock:
            existing = self.find_object(kind, name=name, project_id=project_id)
            if existing:
                return existing
            if kind != "project" and not self.get_object("project", project_id or ""):
                raise NotFound(f"no project with id {project_id!r}")
            self._seq += 1
            obj = self._new_object(kind, name, project_id, fields or {}, created or format_ts(now_micros()))
            self.db.execute("INSERT INTO objects VALUES (?, ?, ?, ?, ?, 0, ?)",
                            (obj["id"], kind, project_id, name, self._seq, orjson.dumps(obj)))
            return obj

    def _new_object(self, kind: str, name: str, project_id: str | None, fields: dict[str, Any],
                    created: str) -> dict[str, Any]:
        base: dict[str, Any] = {"id": fields.get("id") or str(uuid.uuid4()), "name": name,
                                "description": fields.get("description"), "created": created,
                                "deleted_at": None, "user_id": fields.get("user_id")}
        if kind == "project":
            base |= {"org_id": self.org_id, "settings": fields.get("settings")}
        elif kind == "experiment":
            base |= {"project_id": project_id, "repo_info": fields.get("repo_info"),
                     "commit": (fields.get("repo_info") or {}).get("commit"),
                     "base_exp_id": fields.get("base_exp_id"), "dataset_id": fields.get("dataset_id"),
                     "dataset_version": fields.get("dataset_version"),
                     "public": bool(fields.get("public", False)),
                     "metadata": fields.get("metadata"), "tags": fields.get("tags")}
        else:
            base |= {"project_id": project_id, "metadata": fields.get("metadata"),
                     "tags": fields.get("tags"), "url_slug": name.lower().replace(" ", "-")}
        return dict(sorted(base.items()))

    def get_object(self, kind: str, object_id: str) -> dict[str, Any] | None:
        with self.lock:
            row = self.db.execute("SELECT json FROM objects WHERE id = ? AND kind = ? AND deleted = 0",
                                  (object_id, kind)).fetchone()
        return orjson.loads(row[0]) if row else None

    def find_object(self, kind: str, *, name: str, project_id: str | None) -> dict[str, Any] | None:
        sql = "SELECT json FROM objects WHERE kind = ? AND name = ? AND deleted = 0"
        params: list[Any] = [kind, name]
        if kind != "project":
            sql += " AND project_id = ?"
            params.append(project_id)
        with self.lock:
            row = self.db.execute(sql, params).fetchone()
        return orjson.loads(row[0]) if row else None

    def list_objects(self, kind: str, *, project_id: str | None = None, name: str | None = None,
                     ids: Iterable[str] | None = None, limit: int | None = None,
                     starting_after: str | None = None, ending_before: str | None = None
                     ) -> list[dict[str, Any]]:
        """Newest first; `starting_after` pages on (by id, as the real API does)."""
        sql, params = "SELECT json FROM objects WHERE kind = ? AND deleted = 0", [kind]
        if project_id:
            sql += " AND project_id = ?"
            params.append(project_id)
        if name is not None:
            sql += " AND name = ?"
            params.append(name)
        if ids is not None:
            ids = list(ids)
            sql += f" AND id IN ({','.join('?' * len(ids))})"
            params.extend(ids)
        for cursor_id, op in ((starting_after, "<"), (ending_before, ">")):
            if cursor_id:
                with self.lock:
                    seq = self.db.execute("SELECT seq FROM objects WHERE id = ?", (cursor_id,)).fetchone()
                if not seq:
                    raise NotFound(f"no {kind} with id {cursor_id!r} to page from")
                sql += f" AND seq {op} ?"
                params.append(seq[0])
        sql += " ORDER BY seq DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self.lock:
            return [orjson.loads(r[0]) for r in self.db.execute(sql, params)]

    def update_object(self, kind: str, object_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            obj = self.get_object(kind, object_id)
            if obj is None:
                raise NotFound(f"no {kind} with id {object_id!r}")
            for key in ("name", "description", "metadata", "tags", "settings", "public"):
                if key in fields and key in obj:
                    obj[key] = fields[key]
            self.db.execute("UPDATE objects SET name = ?, json = ? WHERE id = ?",
                            (obj["name"], orjson.dumps(obj), object_id))
            return obj

    def delete_object(self, kind: str, object_id: str) -> dict[str, Any]:
        """Soft delete, as the real API: the object leaves listings and queries."""
        with self.lock:
            obj = self.get_object(kind, object_id)
            if obj is None:
                raise NotFound(f"no {kind} with id {object_id!r}")
            obj["deleted_at"] = format_ts(now_micros())
            self.db.execute("UPDATE objects SET deleted = 1, json = ? WHERE id = ?",
                            (orjson.dumps(obj), object_id))
            return obj

    def owner_columns(self, source: str, object_id: str) -> dict[str, str]:
        kind = OBJECT_OF_SOURCE[source]
        obj = self.get_object(kind, object_id)
        if obj is None:
            raise NotFound(f"no {kind} with id {object_id!r}")
        if source == "project_logs":
            return {"project_id": object_id, "org_id": self.org_id, "log_id": "g"}
        if source == "experiment":
            return {"project_id": obj["project_id"], "experiment_id": object_id}
        return {"project_id": obj["project_id"], "dataset_id": object_id}

    # -- rows ------------------------------------------------------------------------------
    def write(self, events: list[tuple[str, str, dict[str, Any]]], *, at: float | None = None) -> WriteResult:
        """Apply (source, object id, event) triples as one transaction with one `_xact_id`."""
        if len(events) > MAX_ROWS_PER_XACT:
            raise WriteError(f"at most {MAX_ROWS_PER_XACT} events in one write")
        with self.transaction() as db:
            xact = str(self.clock.next(at))
            now = format_ts(now_micros() if at is None else int(at * 1_000_000))
            owners: dict[tuple[str, str], dict[str, str]] = {}
            ids: list[str] = []
            for seq, (source, object_id, event) in enumerate(events):
                check_event(event)
                owner = owners.get((source, object_id))
                if owner is None:
                    owner = owners[(source, object_id)] = self.owner_columns(source, object_id)
                ids.append(self._write_one(db, source, object_id, owner, event, xact, seq, now))
        for source, object_id in owners:  # only once committed: a failed write leaves no trace
            self._max_xact[object_key(source, object_id)] = xact
        return WriteResult(ids, xact)

    def _write_one(self, db: sqlite3.Connection, source: str, object_id: str, owner: dict[str, str],
                   event: dict[str, Any], xact: str, seq: int, now: str) -> str:
        obj = object_key(source, object_id)
        if is_comment(event):
            target = self.fetch_latest(obj, str(event["origin"]["id"]))
            if target is None:
                raise WriteError(f"comment on unknown row {event['origin']['id']!r}")
            event = comment_event(event, target, xact, now)
        row_id = str(event["id"]) if event.get("id") is not None else str(uuid.uuid4())
        prior = db.execute("SELECT data, deleted FROM rows WHERE obj = ? AND id = ? AND latest = 1",
                           (obj, row_id)).fetchone()
        existing = orjson.loads(prior[0]) if prior and not prior[1] else None
        db.execute("DELETE FROM rows WHERE obj = ? AND id = ? AND xact = ?", (obj, row_id, xact))
        db.execute("UPDATE rows SET latest = 0 WHERE obj = ? AND id = ? AND latest = 1", (obj, row_id))
        if event.get("_object_delete"):
            if existing is None:
                return row_id
            data = dict(existing, _xact_id=xact)
            self._insert(db, obj, data, xact, deleted=True)
        else:
            data = apply_event(source, owner, existing, {**event, "id": row_id}, xact=xact,
                               new_pagination_key=pagination_key(int(xact), seq), now=now)
            self._insert(db, obj, data, xact, deleted=False)
        return row_id

    def _insert(self, db: sqlite3.Connection, obj: str, data: dict[str, Any], xact: str, *, deleted: bool) -> None:
        micros, _ = normalize_created(data["created"])
        db.execute(
            "INSERT INTO rows VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
            (obj, data["id"], xact, data["_pagination_key"], micros, data.get("root_span_id"),
             int(bool(data.get("is_root"))), int(deleted), dump_row(data)),
        )

    def bulk_insert(self, obj: str, rows: Iterable[tuple[str, str, str, int, str, int, bytes]]) -> None:
        """Load fresh rows (id, xact, pk, created_us, root, is_root, data) fast, for seeding.

        Into an empty store the secondary indexes are built once after the load, which is
        about twice as fast as keeping them up to date row by row.
        """
        top = [""]

        def tracked() -> Iterator[tuple[Any, ...]]:
            for row in rows:
                top[0] = row[1]  # rows come in _xact_id order
                yield (obj, *row)

        with self.transaction() as db:
            empty = db.execute("SELECT 1 FROM rows LIMIT 1").fetchone() is None
            if empty:
                for name in _SECONDARY_INDEXES:
                    db.execute(f"DROP INDEX {name}")
            db.executemany("INSERT INTO rows VALUES (?, ?, ?, ?, ?, ?, ?, 0, 1, ?)", tracked())
            if empty:
                for statement in _INDEX_STATEMENTS:
                    db.execute(statement)
        if top[0] > self._max_xact.get(obj, ""):
            self._max_xact[obj] = top[0]
            self.clock.last = max(self.clock.last, int(top[0]))

    def max_xact(self, objs: Iterable[str]) -> str | None:
        found = [self._max_xact[o] for o in objs if o in self._max_xact]
        return max(found) if found else None

    def fetch_latest(self, obj: str, row_id: str) -> dict[str, Any] | None:
        with self.lock:
            row = self.db.execute(
                f"SELECT data FROM rows t WHERE obj = ? AND id = ? AND {LIVE.format(a='t')}", (obj, row_id)
            ).fetchone()
        return orjson.loads(row[0]) if row else None

    def count_rows(self, source: str, object_id: str) -> int:
        with self.lock:
            return self.db.execute(f"SELECT count(*) FROM rows t WHERE obj = ? AND {LIVE.format(a='t')}",
                                   (object_key(source, object_id),)).fetchone()[0]

    def score_averages(self, source: str, object_id: str) -> dict[str, float]:
        with self.lock:
            return dict(self.db.execute(
                "SELECT s.key, avg(s.value) FROM rows t, json_each(t.data, '$.scores') s "
                f"WHERE t.obj = ? AND {LIVE.format(a='t')} AND s.type IN ('integer', 'real') "
                "GROUP BY s.key ORDER BY s.key", (object_key(source, object_id),)).fetchall())

    def previous_version(self, source: str, object_ids: Iterable[str], row: bytes) -> bytes:
        """The version of `row` before its current one (itself when it has none), for a fault."""
        data = orjson.loads(row)
        objs = [object_key(source, i) for i in object_ids]
        with self.lock:
            older = self.db.execute(
                f"SELECT data FROM rows WHERE obj IN ({','.join('?' * len(objs))}) AND id = ? AND xact < ? "
                "AND deleted = 0 ORDER BY xact DESC LIMIT 1", (*objs, data["id"], data["_xact_id"])).fetchone()
        return older[0] if older else row
