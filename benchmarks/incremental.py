"""A busy day, followed through a real Dagster instance: how much is read to keep the lake exact.

    python -m benchmarks incremental [--history N] [--bursts B] [--inserts I] [--merges M]

The emulator holds `--history` spans over the previous days, all exported first. Then a writer
thread streams bursts of inserts (today, plus a few late rows for yesterday) and merges (scores
added to rows logged earlier today) while the change sensor ticks and its runs execute, one
after the other, on a real Dagster instance. Once the writer stops, ticks go on until no run is
requested; then every partition is compared with the source.

read amplification = rows fetched by the incremental runs / row writes made by the writer.
Below 1 when a row is inserted and merged between two ticks (it is read once, as it ends up).
The last line reads `read amplification: X.XX, partitions exact: N/N`.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from bt_pipelines import ExportConfig, build_definitions
from bt_pipelines.emulator import start_emulator
from bt_pipelines.emulator.seed import seed_bulk
from bt_pipelines.engine.routing import latest_per_id
from bt_pipelines.orchestration.local_runner import execute, tick
from bt_pipelines.orchestration.sensors import change_sensor_name
from bt_pipelines.sink.layout import PartitionPath
from bt_pipelines.sink.manifest import read_manifest
from bt_pipelines.sink.storage import open_storage
from bt_pipelines.source import queries
from bt_pipelines.source.client import BraintrustClient
from bt_pipelines.source.reader import PageReader

from .machine import describe_machine

PROJECT = "busy-project"


class Writer(threading.Thread):
    """Bursts of inserts and merges, as a busy project's loggers and online scorers make them."""

    def __init__(self, store, project_id: str, bursts: int, inserts: int, merges: int, pause: float):
        super().__init__(name="busy-writer", daemon=True)
        self.store, self.project_id = store, project_id
        self.bursts, self.inserts, self.merges, self.pause = bursts, inserts, merges, pause
        self.rng = random.Random(5)
        self.today_ids: list[str] = []
        self.writes = 0
        self.done = threading.Event()

    def run(self) -> None:
        today = datetime.now(UTC).date()
        for _ in range(self.bursts):
            events = [self._span(today) for _ in range(self.inserts)]
            events += [self._span(today - timedelta(days=1)) for _ in range(max(1, self.inserts // 100))]  # late
            if self.today_ids:
                for row in self.rng.sample(self.today_ids, min(self.merges, len(self.today_ids))):
                    events.append({"id": row, "_is_merge": True, "scores": {"online": self.rng.random()}})
            self.store.write([("project_logs", self.project_id, e) for e in events])
            self.today_ids += [e["id"] for e in events[: self.inserts]]
            self.writes += len(events)
            time.sleep(self.pause)
        self.done.set()

    def _span(self, day: date) -> dict:
        at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(seconds=self.rng.randrange(86_000))
        return {"id": str(uuid.uuid4()), "created": at.isoformat().replace("+00:00", "Z"),
                "input": {"question": "x" * self.rng.randrange(100, 600)},
                "output": {"answer": "y" * self.rng.randrange(100, 900)},
                "metrics": {"prompt_tokens": self.rng.randrange(50, 900)},
                "span_attributes": {"name": "answer", "type": "llm"}}


def run_ticks(defs: dg.Definitions, instance: dg.DagsterInstance, sensor: str, cursor: str | None,
              totals: Counter) -> tuple[str | None, int]:
    """One tick, and its runs to their end: (next cursor, runs)."""
    started = time.perf_counter()
    requests, cursor = tick(defs, instance, sensor, cursor)
    totals["tick_seconds"] += time.perf_counter() - started
    totals["ticks"] += 1
    for request in requests:
        result = execute(defs, instance, request, sensor)
        metadata = result.get_asset_materialization_events()[0].materialization.metadata
        totals["rows_read"] += metadata["rows_read"].value
        totals["files_rewritten"] += metadata["files_rewritten"].value
        totals["runs"] += 1
    return cursor, len(requests)


def exact_partitions(storage, bt, project_id: str, days: list[date]) -> int:
    """Partitions holding each of the source's rows once, in its current version, and nothing else."""
    exact = 0
    with BraintrustClient(bt.url, bt.api_key) as client:
        for day in days:
            path = PartitionPath("project_logs", (("project", PROJECT), ("date", day.isoformat())))
            manifest = read_manifest(storage, path)
            lake: Counter = Counter()
            for info in manifest.files if manifest else []:
                table = pq.read_table(storage.uri(info.key), columns=["id", "_xact_id"])
                lake.update(zip(table["id"].to_pylist(), map(str, table["_xact_id"].to_pylist()), strict=True))
            reader = PageReader(client, "project_logs", project_id, queries.created_on_days(day, day), version=None,
                                select="id, _xact_id, _pagination_key")
            source = Counter((row["id"], str(row["_xact_id"])) for page in reader.pages()
                             for row in latest_per_id(page)[0])
            exact += lake == source
    return exact


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks incremental")
    parser.add_argument("--history", type=int, default=30_000, help="spans over the previous days")
    parser.add_argument("--days", type=int, default=3, help="days of history (today included)")
    parser.add_argument("--bursts", type=int, default=30)
    parser.add_argument("--inserts", type=int, default=1_000, help="new spans per burst")
    parser.add_argument("--merges", type=int, default=300, help="merges into earlier spans of today, per burst")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between bursts")
    args = parser.parse_args(argv)

    bt = start_emulator()
    home = tempfile.mkdtemp(prefix="bt-busy-day-")
    try:
        project_id = seed_bulk(bt.store, spans=args.history, days=args.days, project=PROJECT)
        os.environ.update({"BRAINTRUST_API_URL": bt.url, "BRAINTRUST_API_KEY": bt.api_key})
        first = datetime.now(UTC).date() - timedelta(days=args.days - 1)
        config = ExportConfig(destination=f"{home}/lake", experiments=False, datasets=False, trace_summaries=False,
                              projects=[{"name": PROJECT, "start_date": first.isoformat()}])
        defs = build_definitions(config)
        storage = open_storage(f"{home}/lake")
        sensor = change_sensor_name(config, config.projects[0])
        days = [first + timedelta(days=i) for i in range(args.days)]
        Path(home, "dagster").mkdir()
        with dg.DagsterInstance.local_temp(f"{home}/dagster") as instance:
            initial: Counter = Counter()
            started = time.perf_counter()
            cursor, _ = run_ticks(defs, instance, sensor, None, initial)
            print(f"initial export: {initial['rows_read']:,} rows in {initial['runs']} runs, "
                  f"{time.perf_counter() - started:.1f}s; its tick (every row new) took {initial['tick_seconds']:.2f}s")

            writer = Writer(bt.store, project_id, args.bursts, args.inserts, args.merges, args.pause)
            busy: Counter = Counter()
            started = time.perf_counter()
            writer.start()
            while not writer.done.is_set():
                cursor, _ = run_ticks(defs, instance, sensor, cursor, busy)
            runs = 1
            while runs:  # the writer has stopped: tick until a tick finds nothing new
                cursor, runs = run_ticks(defs, instance, sensor, cursor, busy)
            seconds = time.perf_counter() - started
            exact = exact_partitions(storage, bt, project_id, days)
        amplification = busy["rows_read"] / writer.writes
        print(f"\n# Busy day — {describe_machine()}\n")
        print("| what | value |\n|---|---:|")
        for what, value in (
                ("history exported first (spans)", f"{args.history:,}"),
                ("row writes during the day (inserts + merges)", f"{writer.writes:,}"),
                ("rows fetched by incremental runs", f"{busy['rows_read']:,}"),
                ("sensor ticks / runs", f"{busy['ticks']} / {busy['runs']}"),
                ("mean tick (s)", f"{busy['tick_seconds'] / busy['ticks']:.2f}"),
                ("files rewritten (copy-on-write)", f"{busy['files_rewritten']:,}"),
                ("busy day wall time (s)", f"{seconds:.1f}")):
            print(f"| {what} | {value} |")
        print(f"\nread amplification: {amplification:.2f}, partitions exact: {exact}/{len(days)}")
    finally:
        bt.stop()
