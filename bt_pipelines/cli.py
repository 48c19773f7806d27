"""`bt-pipelines`: the command line (emulator, and more as the product grows)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from .engine.model import MAX_READ_STREAMS, ExportOptions


def _emulator(args: argparse.Namespace) -> int:
    from .emulator import DEFAULT_API_KEY, Faults, start_emulator  # not needed by the other commands

    try:
        faults = Faults.from_assignments(args.fault) if args.fault else None
    except ValueError as exc:
        print(f"bt-pipelines emulator: {exc}", file=sys.stderr)
        return 2
    running = start_emulator(host=args.host, port=args.port, db=args.db, seed=args.seed,
                             api_key=args.api_key or DEFAULT_API_KEY, faults=faults, org_name=args.org_name,
                             days=args.days, spans=args.spans)
    print(f"Braintrust emulator listening on {running.url}", flush=True)
    print(f"  BRAINTRUST_API_URL={running.url}", flush=True)
    print(f"  BRAINTRUST_APP_URL={running.url}", flush=True)
    print(f"  BRAINTRUST_API_KEY={running.api_key}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    running.stop()
    return 0


def _discover(args: argparse.Namespace) -> int:
    from .orchestration.discover import discover

    for asset, keys in discover(args.module).items():
        print(f"{asset}: {len(keys)} partitions" + (f" ({keys[0]} ... {keys[-1]})" if keys else ""))
    return 0


def _check(args: argparse.Namespace) -> int:
    from .orchestration.preflight import check_command
    from .source.errors import ConfigError

    try:
        return check_command(args.root)
    except (ConfigError, ValueError) as exc:
        print(f"bt-pipelines check: {exc}", file=sys.stderr)
        return 2


def _export(args: argparse.Namespace) -> int:
    """Export days of one project's logs, with a progress line when a person watches."""
    from datetime import UTC, date, datetime, timedelta

    from .engine.sync import ExportTarget, export_days
    from .sink.layout import slugify
    from .sink.schema import PROJECT_LOGS
    from .sink.storage import open_storage
    from .source.catalog import resolve_projects
    from .source.client import BraintrustClient
    from .source.errors import BraintrustError

    end = date.fromisoformat(args.end) if args.end else datetime.now(UTC).date()
    start = date.fromisoformat(args.start) if args.start else end - timedelta(days=args.days - 1)
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    watching = sys.stderr.isatty()

    def show(progress: dict) -> None:
        line = (f"{progress['current_day']}  {progress['rows']:>12,} rows  {progress['rows_per_s']:>9,.0f} rows/s  "
                f"{progress['pages']:>6} pages  {progress['retries']} retries")
        print(("\r  " + line) if watching else line, end="" if watching else "\n", file=sys.stderr, flush=True)

    try:
        with BraintrustClient(args.api_url, os.environ.get("BRAINTRUST_API_KEY", "")) as client:
            found = resolve_projects(client, [args.project])[args.project]
            target = ExportTarget("project_logs", PROJECT_LOGS, "project_logs", found.id, found.name,
                                  (("project", slugify(found.name)),))
            options = ExportOptions(format=args.format, progress_every_pages=1 if watching else 20,
                                    full_refresh=args.full_refresh, reconcile=args.reconcile,
                                    read_streams=args.read_streams)
            result = export_days(client, open_storage(args.destination), target, days, options, on_progress=show)
    except (BraintrustError, ValueError, OSError) as exc:
        print(f"\nbt-pipelines export: {exc}", file=sys.stderr)
        return 1
    if watching:
        print(file=sys.stderr)
    print(f"{result.rows_written:,} rows of {found.name!r} in {len(result.partitions)} partitions "
          f"({days[0]}..{days[-1]}: {result.modes()}); {result.rows_read:,} rows read in {result.pages} pages, "
          f"{result.rows_changed:,} changed, {result.seconds:.1f}s, {result.retries} retries")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bt-pipelines", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    emu = commands.add_parser("emulator", help="run a Braintrust-compatible server on loopback")
    emu.add_argument("--host", default="127.0.0.1")
    emu.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    emu.add_argument("--db", default=":memory:", help="SQLite file to keep the data in (default: memory)")
    emu.add_argument("--seed", choices=("demo", "none"), default="none")
    emu.add_argument("--api-key", help="the only key the server accepts (default: a fixed local key, printed "
                     "at start)")
    emu.add_argument("--org-name", default="demo-org")
    emu.add_argument("--spans", type=int, default=0, help="also load N bulk spans (project 'bulk-load')")
    emu.add_argument("--days", type=int, default=14, help="days the seeded rows spread over")
    emu.add_argument("--fault", action="append", default=[], metavar="KEY=VALUE",
                     help="inject faults, e.g. rate_limit_every=5 (see GET /admin/faults)")
    emu.set_defaults(func=_emulator)
    found = commands.add_parser("discover", help="register experiment and dataset partitions in $DAGSTER_HOME")
    found.add_argument("-m", "--module", default="bt_pipelines.definitions", help="the code location's module")
    found.set_defaults(func=_discover)
    check = commands.add_parser("check", help="preflight: API, key, projects and destination, writing nothing")
    check.add_argument("root", nargs="?", type=Path, default=Path.cwd(),
                       help="where to look for defs.yaml files that declare bt_pipelines (default: here)")
    check.set_defaults(func=_check)
    export = commands.add_parser("export", help="export days of one project's logs now, without Dagster")
    export.add_argument("project", help="project name or id")
    export.add_argument("--destination", required=True, help="a folder, s3://bucket/prefix or gs://bucket/prefix")
    export.add_argument("--days", type=int, default=1, help="the last N UTC days, today included (default 1)")
    export.add_argument("--start", help="first day, YYYY-MM-DD (instead of --days)")
    export.add_argument("--end", help="last day, YYYY-MM-DD (default: today)")
    export.add_argument("--format", choices=("parquet", "jsonl"), default="parquet")
    export.add_argument("--api-url", default=os.environ.get("BRAINTRUST_API_URL", "https://api.braintrust.dev"))
    export.add_argument("--full-refresh", action="store_true", help="read the days whole (else: only what changed "
                        "since each day's last export)")
    export.add_argument("--reconcile", action="store_true", help="also check days with nothing new against the "
                        "source's counts, and read whole those that differ")
    export.add_argument("--read-streams", type=_streams, default=ExportOptions.read_streams, metavar="N",
                        help="days read at once, in contiguous chunks: 1 to 8 (default %(default)s)")
    export.set_defaults(func=_export)
    return parser


def _streams(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_READ_STREAMS:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_READ_STREAMS}, not {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
