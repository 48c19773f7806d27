"""Side by side, on the same emulator data: the raw-fetch floor, bt_pipelines, bt sync, dlt, pandas.

    python -m benchmarks [--spans N] [--days D] [--latency-ms L] [--only NAMES] [--scaling]

Every contender runs as its own process; wall time and peak RSS cover its whole process tree.
The emulator runs in another process, so its work is not counted (it shares the machine).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from .machine import describe_machine
from .process import Measured, measure

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
KEY = "sk-benchmark-key"
DOCS = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- compare:begin -->", "<!-- compare:end -->"


@dataclass
class Row:
    name: str
    rows: int | None
    measured: Measured
    note: str = ""


class Emulator:
    """`bt-pipelines emulator --spans N` in its own process."""

    def __init__(self, spans: int, days: int, latency_ms: float):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [str(BIN / "bt-pipelines"), "emulator", "--port", str(self.port), "--spans", str(spans),
                   "--days", str(days), "--api-key", KEY, "--seed", "none"]
        if latency_ms:
            command += ["--fault", f"latency_ms={latency_ms}"]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self.process.stdout.readline()  # "listening on ...": the data is loaded

    def project_id(self) -> str:
        headers = {"Authorization": f"Bearer {KEY}"}
        return httpx.get(f"{self.url}/v1/project", params={"project_name": "bulk-load"}, headers=headers).json()[
            "objects"][0]["id"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _bt_cli() -> Path | None:
    binary = REPO / ".cache" / "bt-cli" / "node_modules" / "@braintrust" / "bt-linux-x64" / "bin" / "bt"
    if not binary.exists() and shutil.which("npm"):
        subprocess.run(["npm", "install", "--prefix", str(REPO / ".cache" / "bt-cli"), "--no-audit", "--no-fund",
                        "@braintrust/bt-linux-x64@0.20.0"], capture_output=True, check=False)
    return binary if binary.exists() else None


def _count(measured: Measured) -> int | None:
    lines = measured.stdout.strip().splitlines()
    try:
        return int(lines[-1].replace(",", "").split()[0]) if lines else None
    except ValueError:
        return None


def run_contenders(emulator: Emulator, spans: int, days: int, only: set[str] | None, work: Path) -> list[Row]:
    end = datetime.now(UTC).date() + timedelta(days=1)
    start = end - timedelta(days=days + 1)
    pid = emulator.project_id()
    module = [sys.executable, "-m"]
    env = {"BRAINTRUST_API_KEY": KEY, "PYTHONPATH": str(REPO)}
    plan = {
        "floor (httpx, pages discarded)": module + ["benchmarks.contenders.floor", emulator.url, KEY,
                                                   start.isoformat(), end.isoformat()],
        "bt_pipelines → Parquet (ZSTD)": [str(BIN / "bt-pipelines"), "export", "bulk-load", "--start",
                                          start.isoformat(), "--end", end.isoformat(), "--destination",
                                          str(work / "parquet"), "--format", "parquet", "--api-url", emulator.url],
        "bt_pipelines → JSONL.gz": [str(BIN / "bt-pipelines"), "export", "bulk-load", "--start", start.isoformat(),
                                    "--end", end.isoformat(), "--destination", str(work / "jsonl"), "--format",
                                    "jsonl", "--api-url", emulator.url],
        "dlt rest_api → filesystem Parquet": module + ["benchmarks.contenders.dlt_export", emulator.url, KEY, pid,
                                                       str(work / "dlt")],
        "pandas → to_parquet(partition_cols)": module + ["benchmarks.contenders.pandas_export", emulator.url, KEY,
                                                         start.isoformat(), end.isoformat(), str(work / "pandas")],
    }
    bt = _bt_cli()
    if bt:
        plan["bt sync pull (spans)"] = [str(bt), "sync", "pull", "project_logs:bulk-load", "--spans", str(spans),
                                        "--window", f"{days + 2}d", "--api-url", emulator.url, "--app-url",
                                        emulator.url, "--no-input", "--root", str(work / "bt-sync")]
    rows = []
    for name, command in plan.items():
        if only and not any(word in name for word in only):
            continue
        print(f"  running {name} ...", file=sys.stderr, flush=True)
        measured = measure(command, env={**env, "HOME": str(work / "home")}, cwd=work)
        count = _count(measured) if not name.startswith("bt sync") else _bt_sync_rows(work / "bt-sync")
        note = "" if measured.returncode == 0 else f"failed: {(measured.stderr or measured.stdout)[-300:].strip()}"
        rows.append(Row(name, count, measured, note))
    if not bt and (not only or any("bt sync" in w for w in only)):
        print("  bt sync pull: skipped (npm is not installed, so the bt CLI is not either)", file=sys.stderr)
    return rows


def _bt_sync_rows(root: Path) -> int | None:
    files = list(root.rglob("*.jsonl"))
    return sum(1 for f in files for _ in f.open()) if files else None


def table(rows: list[Row]) -> str:
    floor = next((r for r in rows if r.name.startswith("floor")), None)
    lines = ["| contender | rows | wall (s) | rows/s | peak RSS (MB) | x floor |", "|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        m = row.measured
        rate = f"{row.rows / m.seconds:,.0f}" if row.rows else "–"
        ratio = f"{m.seconds / floor.measured.seconds:.2f}" if floor else "–"
        rows_text = f"{row.rows:,}" if row.rows is not None else "–"
        name = row.name + (f" ({row.note})" if row.note else "")
        lines.append(f"| {name} | {rows_text} | {m.seconds:.1f} | {rate} | {m.peak_rss_mb:.0f} | {ratio} |")
    return "\n".join(lines)


def scaling(sizes: list[int], days: int, work: Path) -> str:
    """bt_pipelines → Parquet as the data grows: memory must stay flat."""
    lines = ["| spans | wall (s) | rows/s | peak RSS (MB) |", "|---:|---:|---:|---:|"]
    for spans in sizes:
        emulator = Emulator(spans, days, 0)
        folder = work / f"scale-{spans}"
        (folder / "home").mkdir(parents=True)
        try:
            (row,) = run_contenders(emulator, spans, days, {"Parquet (ZSTD)"}, folder)
        finally:
            emulator.stop()
        m = row.measured
        lines.append(f"| {spans:,} | {m.seconds:.1f} | {(row.rows or 0) / m.seconds:,.0f} | {m.peak_rss_mb:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every /btql page, like the real API")
    parser.add_argument("--only", nargs="*", help="run contenders whose name contains one of these words")
    parser.add_argument("--scaling", action="store_true", help="also measure memory at 100k, 500k and 1M spans")
    parser.add_argument("--write", action="store_true", help=f"write the tables into {DOCS.relative_to(REPO)}")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bt-bench-") as scratch:
        work = Path(scratch)
        (work / "home").mkdir()
        started = time.perf_counter()
        emulator = Emulator(args.spans, args.days, args.latency_ms)
        print(f"  emulator loaded {args.spans:,} spans in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        try:
            rows = run_contenders(emulator, args.spans, args.days, set(args.only or []) or None, work)
        finally:
            emulator.stop()
        title = (f"{args.spans:,} spans over {args.days} days, {args.latency_ms:g} ms added per page — "
                 f"{describe_machine()}")
        report = f"### {title}\n\n{table(rows)}\n"
        if args.scaling:
            grown = scaling([100_000, 500_000, 1_000_000], args.days, work)
            report += f"\n### Memory as the data grows (bt_pipelines → Parquet)\n\n{grown}\n"
    print(report)
    if args.write:
        _write(report, args.latency_ms)


def _write(report: str, latency_ms: float) -> None:
    """Keep one section per latency setting between the markers of docs/benchmarks.md."""
    text = DOCS.read_text()
    marker = f"<!-- latency {latency_ms:g} -->"
    section = f"{marker}\n{report}{marker.replace('latency', 'end latency')}\n"
    if BEGIN not in text:
        text += f"\n## Side by side (`python -m benchmarks`)\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    body, tail = rest.split(END, 1)
    if marker in body:
        before, after = body.split(marker, 1)
        after = after.split(marker.replace("latency", "end latency"), 1)[1].lstrip("\n")
        body = before + section + after
    else:
        body = body + section
    DOCS.write_text(f"{head}{BEGIN}{body}{END}{tail}")
