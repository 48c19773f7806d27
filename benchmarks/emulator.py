"""How fast the emulator loads and serves: it must outrun any client it is used to measure.

    python -m benchmarks emulator [--spans N]
"""

from __future__ import annotations

import argparse
import time

import httpx

from bt_pipelines.emulator import start_emulator
from bt_pipelines.emulator.seed import BULK_PROJECT, seed_bulk

from .machine import describe_machine

_KEY = b'"_pagination_key":"'


def walk(url: str, key: str, pid: str, *, fmt: str, gzip: bool) -> int:
    """Keyset pages of `select *`, the way an exporter reads a project.

    The answer is not decoded: this measures the server, so the client only finds the last key.
    """
    headers = {"Authorization": f"Bearer {key}", "Accept-Encoding": "gzip" if gzip else "identity"}
    rows, last = 0, None
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        while True:
            keyset = f" | filter: _pagination_key > '{last}'" if last else ""
            query = f"select: * | from: project_logs('{pid}') spans | sort: _pagination_key asc | limit: 1000{keyset}"
            body = client.post("/btql", json={"query": query, "fmt": fmt}).content
            page_rows = body.count(_KEY)
            if not page_rows:
                return rows
            rows += page_rows
            at = body.rindex(_KEY) + len(_KEY)
            last = body[at : body.index(b'"', at)].decode()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks emulator")
    parser.add_argument("--spans", type=int, default=200_000)
    args = parser.parse_args(argv)
    running = start_emulator()
    try:
        started = time.perf_counter()
        pid = seed_bulk(running.store, spans=args.spans, days=7, project=BULK_PROJECT)
        load = time.perf_counter() - started
        print(f"# Emulator, {args.spans:,} spans — {describe_machine()}\n")
        print("| what | rows/s |\n|---|---:|")
        print(f"| bulk load (`--spans`) | {args.spans / load:,.0f} |")
        for fmt, gzip in (("json", True), ("jsonl", True), ("jsonl", False)):
            started = time.perf_counter()
            rows = walk(running.url, running.api_key, pid, fmt=fmt, gzip=gzip)
            seconds = time.perf_counter() - started
            assert rows == args.spans, (rows, args.spans)
            print(f"| keyset pages of `select *`, fmt {fmt}, {'gzip' if gzip else 'no gzip'} | {rows / seconds:,.0f} |")
    finally:
        running.stop()
