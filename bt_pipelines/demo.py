"""The demo: a seeded Braintrust emulator -> everything into ./lake through Dagster's CLI, then
more activity and an incremental run that reads only what changed.

    python -m bt_pipelines.demo          # export, print a summary and a DuckDB query, exit
    python -m bt_pipelines.demo --ui     # the same config in the Dagster UI (Ctrl-C stops)
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from .emulator import DEFAULT_API_KEY, RunningEmulator, start_emulator
from .orchestration.assets import PARTITIONING_TAG
from .orchestration.config import API_URL_ENV, DESTINATION_ENV, START_DATE_ENV
from .sink.layout import MANIFEST_ROOT

REPO = Path(__file__).resolve().parents[1]
DAYS = 14


def _environment(url: str, key: str, lake: Path, first_day: str) -> dict[str, str]:
    return {**os.environ, "VIRTUAL_ENV": str(Path(sys.executable).parents[1]), "DAGSTER_HOME": str(REPO),
            API_URL_ENV: url, "BRAINTRUST_APP_URL": url, "BRAINTRUST_API_KEY": key,
            DESTINATION_ENV: str(lake), START_DATE_ENV: first_day}


def _cli(env: dict[str, str], *args: str) -> str:
    """What a CI job would run: a CLI command, from the repository's root. Returns all it printed."""
    print("$ " + " ".join(a if " " not in a and "*" not in a else f"'{a}'" for a in args), flush=True)
    command = [str(Path(sys.executable).parent / args[0]), *args[1:]]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
    print(f"  ({time.perf_counter() - started:.1f} s)", flush=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"{args[0]} failed (exit {done.returncode})")
    return done.stdout + done.stderr


def _materialize(env: dict[str, str], select: str, *partitions: str) -> None:
    _cli(env, "dagster", "asset", "materialize", "-m", "bt_pipelines.definitions", "--select", select, *partitions)


def _export_everything(env: dict[str, str], first_day: str, last_day: str) -> None:
    """Daily tables in one ranged run; experiments and datasets after discovering them; catalogs."""
    _materialize(env, f"tag:{PARTITIONING_TAG}=daily", "--partition-range", f"{first_day}...{last_day}")
    discovered = _cli(env, "bt-pipelines", "discover")
    for line in discovered.splitlines():  # "braintrust/<project>/experiments: 3 partitions (a ... z)"
        asset, _, rest = line.partition(": ")
        if "(" in rest:
            first, last = rest[rest.index("(") + 1 : -1].split(" ... ")
            _materialize(env, asset, "--partition-range", f"{first}...{last}")
    _materialize(env, f"tag:{PARTITIONING_TAG}=none")


def _log_more_activity(emulator: RunningEmulator, today: str) -> None:
    """After the export, the project lives on: new spans today, scores merged into yesterday's."""
    project = emulator.store.list_objects("project", name="checkout-assistant")[0]["id"]
    yesterday = (datetime.fromisoformat(today) - timedelta(days=1)).date().isoformat()
    with emulator.client() as client:
        query = (f"select: id, _pagination_key | from: project_logs('{project}') | filter: created >= '{yesterday}' "
                 f"AND created < '{today}' | sort: _pagination_key asc | limit: 3")
        earlier = [row["id"] for row in client.post("/btql", json={"query": query}).json()["data"]]
    emulator.store.write(
        [("project_logs", project, {"id": f"after-the-export-{n}", "input": {"question": f"late question {n}"},
                                    "span_attributes": {"name": "answer", "type": "llm"}}) for n in range(5)]
        + [("project_logs", project, {"id": row, "_is_merge": True, "scores": {"reviewed": 1.0}}) for row in earlier])


def _follow_changes(env: dict[str, str], emulator: RunningEmulator, today: str) -> None:
    """Run the last two days again: only the 8 changed rows are read, and two files rewritten at most."""
    _log_more_activity(emulator, today)
    print("\nLogged 5 new spans and merged scores into 3 of yesterday's, then ran yesterday and today again:")
    yesterday = (datetime.fromisoformat(today) - timedelta(days=1)).date().isoformat()
    out = _cli(env, "dagster", "asset", "materialize", "-m", "bt_pipelines.definitions", "--select",
               "braintrust/checkout-assistant/project_logs", "--partition-range", f"{yesterday}...{today}")
    done = [line[line.index("done: "):] for line in out.splitlines() if "done: " in line]
    print("  " + (done[-1] if done else "(no summary line found in Dagster's output)"), flush=True)


def _manifests(lake: Path, first_day: str) -> dict[str, list[dict]]:
    """This run's manifests: days before `first_day` may remain from runs on earlier days."""
    by_table: dict[str, list[dict]] = {}
    for path in sorted((lake / MANIFEST_ROOT).rglob("*.json")):
        manifest = orjson.loads(path.read_bytes())
        if manifest["partition"].get("date", first_day) >= first_day and not manifest.get("deleted_at"):
            by_table.setdefault(manifest["table"], []).append(manifest)
    return by_table


def _source_rows(emulator: RunningEmulator, first_day: str) -> int:
    """Log rows the source holds for the exported days, counted by the API itself."""
    with emulator.client() as client:
        total = 0
        for project in client.get("/v1/project").json()["objects"]:
            query = (f"measures: count(1) as n | from: project_logs('{project['id']}') "
                     f"| filter: created >= '{first_day}'")
            total += client.post("/btql", json={"query": query}).json()["data"][0]["n"]
        return total


def _summary(lake: Path, first_day: str, seconds: float, source_rows: int) -> None:
    tables = _manifests(lake, first_day)
    print(f"\nExported into {lake} in {seconds:.1f} s:\n")
    print(f"  {'table':<22}{'partitions':>11}{'rows':>9}{'files':>7}{'MB':>8}")
    for table, manifests in tables.items():
        rows = sum(m["rows"] for m in manifests)
        print(f"  {table:<22}{len(manifests):>11}{rows:>9,}{sum(len(m['files']) for m in manifests):>7}"
              f"{sum(m['bytes'] for m in manifests) / 1e6:>8.2f}")
    logs = sum(m["rows"] for m in tables.get("project_logs", []))
    verdict = "exact" if logs == source_rows else "MISMATCH"
    print(f"\nLog rows for these days in Braintrust (counted by its API): {source_rows:,}; "
          f"in the lake: {logs:,} ({verdict})\n")
    import duckdb

    query = f"""
        SELECT date, count(*) AS spans, count(DISTINCT root_span_id) AS traces,
               round(avg(scores['helpfulness']), 3) AS mean_helpfulness
        FROM read_parquet('{lake}/project_logs/*/*/*.parquet', hive_partitioning = true)
        WHERE date >= DATE '{first_day}'
        GROUP BY date ORDER BY date"""
    print("DuckDB over the lake:\n" + "\n".join("  " + line.strip() for line in query.splitlines() if line.strip()))
    duckdb.sql(query).show(max_rows=40)
    experiments = f"""
        SELECT project, name, rows, round(scores['helpfulness'], 3) AS helpfulness
        FROM read_parquet('{lake}/experiments_catalog/*/*.parquet', hive_partitioning = true)
        ORDER BY project, name"""
    print("\n".join("  " + line.strip() for line in experiments.splitlines() if line.strip()))
    duckdb.sql(experiments).show(max_rows=40)


def run_demo(lake: Path, api_key: str = DEFAULT_API_KEY) -> None:
    today = datetime.now(UTC).date()
    first_day, last_day = (today - timedelta(days=DAYS - 1)).isoformat(), today.isoformat()
    if (lake / MANIFEST_ROOT).is_dir():  # an earlier demo's lake: its emulator's history is gone with it
        print(f"Removing the lake of an earlier demo at {lake}", flush=True)
        shutil.rmtree(lake)
    print(f"Starting a Braintrust emulator with a seeded demo organisation ({DAYS} days of logs)...", flush=True)
    emulator = start_emulator(seed="demo", days=DAYS, api_key=api_key)
    try:
        print(f"  {emulator.url}", flush=True)
        env = _environment(emulator.url, emulator.api_key, lake, first_day)
        started = time.perf_counter()
        _export_everything(env, first_day, last_day)
        _follow_changes(env, emulator, last_day)
        _summary(lake, first_day, time.perf_counter() - started, _source_rows(emulator, first_day))
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
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the emulator's key (the demo passes it on)")
    args = parser.parse_args(argv)
    lake = args.lake.absolute()
    if args.ui:
        run_ui(lake, args.port)
    else:
        run_demo(lake, args.api_key)


if __name__ == "__main__":
    main()
