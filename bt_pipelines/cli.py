"""`bt-pipelines`: the command line (emulator, and more as the product grows)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from .emulator import DEFAULT_API_KEY, Faults, start_emulator


def _emulator(args: argparse.Namespace) -> int:
    try:
        faults = Faults.from_assignments(args.fault) if args.fault else None
    except ValueError as exc:
        print(f"bt-pipelines emulator: {exc}", file=sys.stderr)
        return 2
    running = start_emulator(host=args.host, port=args.port, db=args.db, seed=args.seed,
                             api_key=args.api_key, faults=faults, org_name=args.org_name,
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bt-pipelines", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    emu = commands.add_parser("emulator", help="run a Braintrust-compatible server on loopback")
    emu.add_argument("--host", default="127.0.0.1")
    emu.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    emu.add_argument("--db", default=":memory:", help="SQLite file to keep the data in (default: memory)")
    emu.add_argument("--seed", choices=("demo", "none"), default="none")
    emu.add_argument("--api-key", default=DEFAULT_API_KEY, help="the only key the server accepts")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
