"""Read one consistent snapshot of rows: pin a watermark, then keyset pages in the background.

Every page is pinned to the same `version` (the object's newest `_xact_id` when the read
starts), so a busy project cannot shift rows between pages. Pages come in `_pagination_key`
order with the caller's filter; the next page is fetched while the caller works on this one.

Boundaries: Braintrust may repeat a row with an older `_xact_id` (same `id`, same key). So
each page resumes at `_pagination_key >= <last key>`, and the rows that share a page's last
key are held back until the next page, which repeats them. A stale version at a page's end
then never hides the newer one; the caller keeps the highest `_xact_id` per id in a page.

A 500/504 is read as "page too heavy": after a backoff the same page is asked again with half
the LIMIT (1000 -> 500 -> ... -> 25), then the size grows back. The read ends on an empty
page only (a short page may be a cut-short answer, and keyset resumes safely).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import takewhile
from typing import Any

import httpx
import orjson

from . import queries
from .client import BodyError, BraintrustClient, HeavyPage
from .errors import RetriesExhausted

MAX_PAGE = 1000
MIN_PAGE = 25


@dataclass
class ReadStats:
    pages: int = 0
    rows: int = 0
    heavy_pages: int = 0
    stale_replaced: int = 0  # held rows a repeated page brought back in a newer version
    limits: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class RawPage:
    """A page of JSON lines, not yet decoded: the fetching thread only reads its last row."""

    body: bytes
    last_key: str | None
    repeats: str | None = None  # the key this page starts at again (`>=`), when it does


def json_lines(body: bytes) -> list[dict[str, Any]]:
    """A page's rows as dicts."""
    if not body:
        return []
    try:
        return list(map(orjson.loads, body.split(b"\n")))  # the common case, a microsecond a row faster
    except orjson.JSONDecodeError:  # blank lines, or \r\n endings
        return [orjson.loads(line) for line in body.splitlines() if line.strip()]


def _raw_page(response: httpx.Response) -> RawPage:
    """Check the page's tail: an answer cut mid-row fails here and is asked again."""
    body = response.content.rstrip(b"\n")
    if not body:
        return RawPage(b"", None)
    try:
        last = orjson.loads(body[body.rfind(b"\n") + 1 :])
    except orjson.JSONDecodeError as exc:
        raise BodyError(f"a page of rows was cut short ({exc})") from exc
    return RawPage(body, last["_pagination_key"])


def _hold_back_tail(rows: list[Any]) -> tuple[list[Any], list[Any]]:
    """Split off the rows that share the last `_pagination_key`: the next page repeats them."""
    if not rows:
        return rows, []
    last = rows[-1]["_pagination_key"]
    cut = len(rows)
    while cut > 0 and rows[cut - 1]["_pagination_key"] == last:
        cut -= 1
    return rows[:cut], rows[cut:]


def _has_key(key: str) -> Callable[[Any], bool]:
    return lambda row: row["_pagination_key"] == key


def read_watermark(client: BraintrustClient, kind: str, object_id: str) -> str | None:
    """The object's newest `_xact_id`, the version every page of a read is pinned to.

    `max(_xact_id)` only sees live rows, so a delete newer than the newest live write would
    be missed; the answer's `freshness_state.last_processed_xact_id` (when the service sends
    it; its name on the real service is UNCONFIRMED) covers deletes too, so the larger wins.
    """
    answer = client.btql(queries.watermark(kind, object_id))
    rows = answer.get("data") or []
    found = [rows[0].get("watermark")] if rows else []
    freshness = answer.get("freshness_state")
    if isinstance(freshness, dict):
        found.append(freshness.get("last_processed_xact_id"))
    found = [str(x) for x in found if x]
    return max(found, key=int) if found else None


class PageReader:
    """Iterate pages (lists of rows) of `kind(object_id)` rows matching `where`.

    Rows are what `decode` makes of a page's JSON lines: dicts by default. Any row type works
    that gives `row["id"]`, `row["_xact_id"]` and `row["_pagination_key"]`.
    """

    def __init__(self, client: BraintrustClient, kind: str, object_id: str, where: str | None, *,
                 version: str | None, shape: str = "spans", page_size: int = MAX_PAGE, prefetch: int = 2,
                 select: str = "*", preview_length: int | None = None,
                 decode: Callable[[bytes], list[Any]] = json_lines):
        self.client = client
        self.decode = decode
        self.kind, self.object_id, self.where, self.shape = kind, object_id, where, shape
        self.select, self.preview_length = select, preview_length
        self.version = version
        self.page_size = max(MIN_PAGE, min(page_size, MAX_PAGE))
        self.prefetch = prefetch
        self.stats = ReadStats()

    def fetch(self, after: str | None, limit: int, inclusive: bool = False) -> RawPage:
        query = queries.page(self.kind, self.object_id, where=self.where, after=after, limit=limit, shape=self.shape,
                             select=self.select, preview_length=self.preview_length, inclusive=inclusive)
        page = self.client.btql(query, fmt="jsonl", version=self.version, parse=_raw_page, heavy_is_error=True)
        return RawPage(page.body, page.last_key, after if inclusive else None)

    def pages(self) -> Iterator[list[Any]]:
        """Pages in order; fetching runs ahead on a thread, at most `prefetch` pages."""
        return read_together([self])

    def _take(self, page: RawPage, held: list[Any]) -> tuple[list[Any], list[Any]]:
        """A fetched page's rows to hand on, and the rows to hold back until the next page."""
        rows = self.decode(page.body) if page.body else []
        self.stats.rows += len(rows)
        if held and page.repeats == held[0]["_pagination_key"]:
            # This page starts with those rows again (keys ascend), in their snapshot versions.
            fresh = {row["id"]: int(row["_xact_id"]) for row in takewhile(_has_key(page.repeats), rows)}
            self.stats.stale_replaced += sum(int(r["_xact_id"]) < fresh.get(r["id"], 0) for r in held)
            held = []
        return _hold_back_tail(held + rows)

    def _fetch_all(self, inbox: queue.Queue[tuple[int, str, Any]], stop: threading.Event, tag: int) -> None:
        def hand(kind: str, item: Any) -> bool:
            while not stop.is_set():
                try:
                    inbox.put((tag, kind, item), timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            after: str | None = None
            inclusive = False
            limit = self.page_size
            heavy_streak = 0
            while not stop.is_set():
                try:
                    page = self.fetch(after, limit, inclusive)
                except HeavyPage as heavy:
                    self.stats.heavy_pages += 1
                    heavy_streak += 1
                    if limit <= MIN_PAGE and heavy_streak > self.client.retry.max_attempts:
                        raise RetriesExhausted(
                            f"Braintrust answered {heavy.status} even for pages of {MIN_PAGE} rows") from heavy
                    limit = max(MIN_PAGE, limit // 2)
                    self.client.sleep(self.client.retry.backoff(min(heavy_streak, 6), self.client.rng))
                    continue
                heavy_streak = 0
                self.stats.pages += 1
                self.stats.limits.append(limit)
                if page.last_key is None:
                    hand("end", None)
                    return
                # Resume at the last key again (`>=`), unless this page held nothing else: no progress.
                inclusive = page.last_key != after
                after = page.last_key
                limit = min(self.page_size, limit * 2)
                if not hand("page", page):
                    return
        except BaseException as exc:  # handed to the reading thread, which raises it
            hand("error", exc)


def read_together(readers: Sequence[PageReader]) -> Iterator[list[Any]]:
    """The pages of several readers, each fetched on its own thread, handed on as they arrive.

    Each reader's pages keep their order; pages are decoded here, in the consuming thread, so
    memory stays one page per reader in flight plus the prefetched raw bodies. Several readers
    over disjoint ranges overlap their round trips, which is what bounds a read of many pages.
    """
    inbox: queue.Queue[tuple[int, str, Any]] = queue.Queue(maxsize=sum(r.prefetch for r in readers))
    stop = threading.Event()
    workers = [threading.Thread(target=r._fetch_all, args=(inbox, stop, n), name="bt-page-reader", daemon=True)
               for n, r in enumerate(readers)]
    for worker in workers:
        worker.start()
    held: list[list[Any]] = [[] for _ in readers]  # per reader: rows sharing its last key, until it repeats them
    running = len(readers)
    try:
        while running:
            tag, kind, item = inbox.get()
            if kind == "error":
                raise item
            if kind == "end":
                running -= 1
                rows, held[tag] = held[tag], []
            else:
                rows, held[tag] = readers[tag]._take(item, held[tag])
            if rows:
                yield rows
    finally:
        stop.set()  # workers stop at their next hand-over; a request in flight is left to finish
        deadline = time.monotonic() + 2.0
        while (alive := [w for w in workers if w.is_alive()]) and time.monotonic() < deadline:
            try:
                inbox.get_nowait()
            except queue.Empty:
                alive[0].join(0.05)
