"""The official clients work against the emulator unchanged: the braintrust SDK, and the bt CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bt_pipelines.emulator import emulator

REPO = Path(__file__).resolve().parents[2]
BT_VERSION = "0.20.0"


def test_sdk_logs_traces_and_datasets_and_reads_them_back():
    with emulator() as bt:
        done = subprocess.run([sys.executable, str(Path(__file__).with_name("sdk_flow.py"))],
                              env={**os.environ, **bt.env()}, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout.strip().splitlines()[-1])
        client = bt.client()
        pid = client.get("/v1/project", params={"project_name": "sdk-project"}).json()["objects"][0]["id"]
        spans = client.post("/btql", json={"query": {
            "select": [{"op": "star"}],
            "from": {"op": "function", "name": {"op": "ident", "name": ["project_logs"]},
                     "args": [{"op": "literal", "value": pid}]},
            "filter": {"op": "eq", "left": {"op": "ident", "name": ["root_span_id"]},
                       "right": {"op": "literal", "value": out["root_span_id"]}}}}).json()["data"]

    by_name = {s["span_attributes"]["name"]: s for s in spans}
    assert set(by_name) == {"answer", "chat", "lookup"}
    root = by_name["answer"]
    assert root["id"] == out["root_id"] and root["is_root"] is True
    assert root["scores"] == {"accuracy": 0.9}  # the late merge landed on the full row
    assert root["output"] == {"answer": "hello"} and root["tags"] == ["t1"]
    assert by_name["chat"]["span_parents"] == [root["span_id"]]
    assert by_name["lookup"]["span_parents"] == [by_name["chat"]["span_id"]]
    assert by_name["chat"]["metrics"]["prompt_tokens"] == 3
    rows = {r["id"]: r for r in out["dataset_rows"]}
    assert set(rows) == set(out["dataset_ids"][:4])
    assert rows[out["dataset_ids"][0]]["expected"] == {"e": 100}
    assert rows[out["dataset_ids"][1]]["input"] == {"i": 1}


@pytest.fixture(scope="session")
def bt_cli() -> Path:
    """The real `bt` binary, installed from npm into .cache/ by the test setup."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed, so the bt CLI cannot be installed here")
    prefix = REPO / ".cache" / "bt-cli"
    binary = prefix / "node_modules" / "@braintrust" / "bt-linux-x64" / "bin" / "bt"
    if not binary.exists():
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run([npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
                        f"@braintrust/bt-linux-x64@{BT_VERSION}"], check=True, capture_output=True, timeout=300)
    return binary


@pytest.mark.parametrize("mode", [["--spans", "100000"], ["--traces", "100000"]])
def test_bt_sync_pull_gets_every_span_of_a_project(bt_cli, tmp_path, mode):
    with emulator(seed="demo") as bt:
        client = bt.client()
        pid = client.get("/v1/project", params={"project_name": "checkout-assistant"}).json()["objects"][0]["id"]
        expected = {r["id"] for r in _all_rows(client, pid)}
        done = subprocess.run(
            [str(bt_cli), "sync", "pull", "project_logs:checkout-assistant", *mode, "--window", "30d",
             "--api-url", bt.url, "--app-url", bt.url, "--no-input", "--root", str(tmp_path / "out")],
            env={**os.environ, "HOME": str(tmp_path), "BRAINTRUST_API_KEY": bt.api_key},
            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    pulled = [json.loads(line)["id"] for f in (tmp_path / "out").rglob("*.jsonl") for line in f.open()]
    assert len(pulled) == len(set(pulled)) == len(expected) > 1000
    assert set(pulled) == expected


def _all_rows(client, pid: str) -> list[dict]:
    """Walk a project the way braintrust-migrate does: newline BTQL, keyset on _pagination_key."""
    rows: list[dict] = []
    last = None
    while True:
        query = "\n".join(filter(None, [
            "select: *", f"from: project_logs('{pid}') spans",
            f"filter: _pagination_key > '{last}'" if last else None,
            "sort: _pagination_key asc", "limit: 1000"]))
        page = client.post("/btql", json={"query": query, "fmt": "json", "api_version": 1,
                                          "use_brainstore": True, "query_timeout_seconds": 120}).json()["data"]
        if not page:
            return rows
        rows += page
        last = page[-1]["_pagination_key"]


def test_migrate_style_keyset_walk_loses_and_repeats_nothing():
    with emulator(seed="demo") as bt:
        client = bt.client()
        for project in client.get("/v1/project").json()["objects"]:
            pid = project["id"]
            walked = _all_rows(client, pid)
            count = client.post("/btql", json={"query": f"SELECT count(*) AS n FROM project_logs('{pid}')"}).json()
            keys = [r["_pagination_key"] for r in walked]
            assert keys == sorted(keys) and len(set(keys)) == len(keys)
            assert len({r["id"] for r in walked}) == len(walked) == count["data"][0]["n"] > 1000
