"""The demo: a seeded Braintrust emulator -> every logs partition into ./lake through Dagster's CLI.

    python -m bt_pipelines.demo          # export, print a summary and a DuckDB query, exit
    python -m bt_pipelines.demo --ui     # the same config in the Dagster UI (Ctrl-C stops)
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from .emulator import RunningEmulator, start_emulator
from .orchestration.config import API_URL_ENV, DESTINATION_ENV, START_DATE_ENV
from .sink.layout import MANIFEST_ROOT

REPO = Path(__file__).resolve().parents[1]
DAYS = 14


def _environment(url: str, key: str, lake: Path, first_day: str) -> dict[str, str]:
    return {**os.environ, "VIRTUAL_ENV": str(Path(sys.executable).parents[1]), "DAGSTER_HOME": str(REPO),
            API_URL_ENV: url, "BRAINTRUST_APP_URL": url, "BRAINTRUST_API_KEY": key,
            DESTINATION_ENV: str(lake), START_DATE_ENV: first_day}


def _materialize(env: dict[str, str], first_day: str, last_day: str) -> None:
    """What a CI job would run: the dagster CLI, one ranged run over every partition."""
    command = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "bt_pipelines.definitions",
               "--select", "key:braintrust/*/project_logs", "--partition-range", f"{first_day}...{last_day}"]
    print("$ dagster asset materialize -m bt_pipelines.definitions --select 'key:braintrust/*/project_logs' "
          f"--partition-range {first_day}...{last_day}", flush=True)
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"the Dagster run failed (exit {done.returncode})")


def _source_rows(emulator: RunningEmulator, first_day: str) -> int:
    """Rows the source holds for the exported days, counted by the API itself."""
    with emulator.client() as client:
        total = 0
        for project in client.get("/v1/project").json()["objects"]:
            query = (f"measures: count(1) as n | from: project_logs('{project['id']}') "
                     f"| filter: created >= '{first_day}'")
            total += client.post("/btql", json={"query": query}).json()["data"][0]["n"]
        return total


def _summary(lake: Path, seconds: float, source_rows: int) -> None:
    manifests = [orjson.loads(p.read_bytes()) for p in sorted((lake / MANIFEST_ROOT / "project_logs").rglob("*.json"))]
    rows = sum(m["rows"] for m in manifests)
    files = sum(len(m["files"]) for m in manifests)
    size = sum(m["bytes"] for m in manifests)
    projects = sorted({m["partition"]["project"] for m in manifests})
    print(f"\nExported {len(manifests)} partitions of {len(projects)} projects ({', '.join(projects)}): "
          f"{rows:,} rows in {files} files, {size / 1e6:.2f} MB, {seconds:.1f} s")
    verdict = "exact" if rows == source_rows else "MISMATCH"
    print(f"Source rows for these days (Braintrust API): {source_rows:,}; in the lake: {rows:,} ({verdict})\n")
    import duckdb

    query = f"""
        SELECT date, count(*) AS rows, count(DISTINCT root_span_id) AS traces,
               round(avg(scores['helpfulness']), 3) AS mean_helpfulness
        FROM read_parquet('{lake}/project_logs/*/*/*.parquet', hive_partitioning = true)
        GROUP BY date ORDER BY date"""
    print("DuckDB over the lake:\n" + "\n".join("  " + line.strip() for line in query.splitlines() if line.strip()))
    duckdb.sql(query).show(max_rows=40)


def run_demo(lake: Path) -> None:
    today = datetime.now(UTC).date()
    first_day, last_day = (today - timedelta(days=DAYS - 1)).isoformat(), today.isoformat()
    print(f"Starting a Braintrust emulator with a seeded demo organisation ({DAYS} days of logs)...", flush=True)
    emulator = start_emulator(seed="demo", days=DAYS)
    try:
        print(f"  {emulator.url}", flush=True)
        env = _environment(emulator.url, emulator.api_key, lake, first_day)
        started = time.perf_counter()
        _materialize(env, first_day, last_day)
        _summary(lake, time.perf_counter() - started, _source_rows(emulator, first_day))
    finally:
        emulator.stop()


def run_ui(lake: Path, port: int) -> None:
    """The Dagster UI on the same config, against a seeded emulator, until Ctrl-C."""
    today = datetime.now(UTC).date()
    emulator = start_emulator(seed="demo", days=DAYS)
    env = _environment(emulator.url, emulator.api_key, lake, (today - timedelta(days=DAYS - 1)).isoformat())
    print(f"Braintrust emulator: {emulator.url}\nDagster UI: http://127.0.0.1:{port}  (Ctrl-C stops both)", flush=True)
    ui = subprocess.Popen([str(Path(sys.executable).parent / "dg"), "dev", "--port", str(port)],
                          env=env, cwd=REPO, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        ui.wait()
    except KeyboardInterrupt:
        ui.terminate()
        ui.wait(30)
    finally:
        emulator.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bt_pipelines.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, default=REPO / "lake", help="where the lake goes (default ./lake)")
    parser.add_argument("--ui", action="store_true", help="open the Dagster UI instead of exporting once")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args(argv)
    lake = args.lake.absolute()
    if args.ui:
        run_ui(lake, args.port)
    else:
        run_demo(lake)


if __name__ == "__main__":
    main()
