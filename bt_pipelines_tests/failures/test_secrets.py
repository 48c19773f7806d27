"""The API key never appears in logs, exception text or lake files on a bad day (the demo has its own check)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bt_pipelines.emulator import emulator
from bt_pipelines.engine.sync import ExportTarget, export_days
from bt_pipelines.sink.schema import PROJECT_LOGS
from bt_pipelines.sink.storage import open_storage
from bt_pipelines.source.client import BraintrustClient, RetryPolicy

TODAY = datetime.now(UTC).date()


def files_containing(root: Path, secret: str) -> list[Path]:
    needle = secret.encode()
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_failures_never_show_the_key(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)  # httpx and httpcore included
    secret = f"sk-SECRET-{uuid.uuid4().hex}"
    lake = open_storage(str(tmp_path / "lake"))
    errors: list[str] = []
    with emulator(seed="demo", days=1, api_key=secret) as bt:
        pid = bt.store.find_object("project", name="checkout-assistant", project_id=None)["id"]
        target = ExportTarget("project_logs", PROJECT_LOGS, "project_logs", pid, "p", (("project", "p"),))
        client = BraintrustClient(bt.url, secret, retry=RetryPolicy(max_attempts=3, base_delay=0.001),
                                  sleep=lambda s: None)
        errors.append(repr(client))
        for faults in ({"rate_limit_every": 1}, {"reset_every": 1}, {"truncate_every": 1},
                       {"heavy_limit_above": 1, "heavy_status": 504}, {"redirect_every": 1}):
            bt.set_faults(**faults)
            try:
                export_days(client, lake, target, [TODAY])
            except Exception as exc:  # noqa: BLE001 - the text of every failure is what is checked
                errors.append(f"{exc!r} {exc}")
        bt.clear_faults()
        for bad in (ExportTarget("project_logs", PROJECT_LOGS, "project_logs", pid, "p", (("project", "p"),),
                                 filter="broken ==="),
                    ExportTarget("project_logs", PROJECT_LOGS, "project_logs", "no-such-id", "p", (("project", "p"),))):
            with pytest.raises(Exception) as raised:
                export_days(client, lake, bad, [TODAY - timedelta(days=1)])
            errors.append(f"{raised.value!r} {raised.value}")
        export_days(client, lake, target, [TODAY])  # and a good run, for the files
    assert len(errors) > 5
    assert secret not in "\n".join(errors)
    assert secret not in caplog.text
    assert files_containing(tmp_path / "lake", secret) == []
