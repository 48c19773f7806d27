"""A bad day: every failure ends with an exact lake, or a clear error and the lake as it was."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from bt_pipelines.emulator import emulator
from bt_pipelines.engine.sync import ExportOptions, ExportTarget, export_days
from bt_pipelines.sink.schema import PROJECT_LOGS
from bt_pipelines.sink.storage import StorageError, open_storage
from bt_pipelines.source.client import BraintrustClient, RetryPolicy

from ..lakeview import assert_folder_is_manifest, lake_pairs, source_pairs
from ..servers import s3_client

DAYS = 3
TODAY = datetime.now(UTC).date()
ALL_DAYS = [TODAY - timedelta(days=i) for i in reversed(range(DAYS))]
SCHEDULES = int(os.environ.get("BT_FAULT_SCHEDULES", "12"))


@pytest.fixture(scope="module")
def bt():
    with emulator(seed="demo", days=DAYS) as running:
        yield running


def target_for(bt) -> ExportTarget:
    pid = bt.store.find_object("project", name="checkout-assistant", project_id=None)["id"]
    return ExportTarget("project_logs", PROJECT_LOGS, "project_logs", pid, "checkout-assistant",
                        (("project", "checkout-assistant"),))


def quick_client(bt) -> BraintrustClient:
    return BraintrustClient(bt.url, bt.api_key, retry=RetryPolicy(max_attempts=12, base_delay=0.001, max_delay=0.01,
                                                                  max_retry_after=0.01), sleep=lambda s: None)


def assert_exact(bt, storage, target):
    for day in ALL_DAYS:
        assert lake_pairs(storage, target.day_path(day)) == source_pairs(bt, target.object_id, day), day
        assert_folder_is_manifest(storage, target.day_path(day))


def test_read_timeouts_are_retried_and_end_exact(bt, local_lake):
    target = target_for(bt)
    bt.set_faults(slow_every=3, slow_ms=1500)
    try:
        with BraintrustClient(bt.url, bt.api_key, timeout=0.5, sleep=lambda s: None) as braintrust:
            result = export_days(braintrust, local_lake.storage, target, ALL_DAYS, ExportOptions(page_size=50))
    finally:
        bt.clear_faults()
    assert result.retries >= 2
    assert_exact(bt, local_lake.storage, target)


class FlakyS3:
    """A real S3 client (on moto's server) whose first writes fail with 503 SlowDown."""

    def __init__(self, client, failures: int):
        self.client, self.failures = client, failures

    def __getattr__(self, name):
        return getattr(self.client, name)

    def _maybe_fail(self, operation: str) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."},
                               "ResponseMetadata": {"HTTPStatusCode": 503}}, operation)

    def upload_file(self, *args, **kwargs):
        self._maybe_fail("PutObject")
        return self.client.upload_file(*args, **kwargs)

    def put_object(self, **kwargs):
        self._maybe_fail("PutObject")
        return self.client.put_object(**kwargs)


@pytest.fixture
def no_sleep(monkeypatch):
    monkeypatch.setattr("bt_pipelines.sink.storage.time.sleep", lambda s: None)


def test_transient_storage_errors_are_retried(bt, s3_endpoint, no_sleep):
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket="flaky-but-fine")
    storage = open_storage("s3://flaky-but-fine/lake", s3_client=FlakyS3(client, failures=3))
    target = target_for(bt)
    with quick_client(bt) as braintrust:
        export_days(braintrust, storage, target, ALL_DAYS)
    assert_exact(bt, open_storage("s3://flaky-but-fine/lake", s3_client=client), target)


def test_storage_that_keeps_failing_ends_cleanly_and_leaves_the_lake_as_it_was(bt, s3_endpoint, no_sleep):
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket="flaky-for-good")
    target = target_for(bt)
    with quick_client(bt) as braintrust:
        export_days(braintrust, open_storage("s3://flaky-for-good/lake", s3_client=client), target, ALL_DAYS)
        stored = open_storage("s3://flaky-for-good/lake", s3_client=client)
        before = {key: stored.get_bytes(key) for key in stored.list("")}
        broken = open_storage("s3://flaky-for-good/lake", s3_client=FlakyS3(client, failures=10**6))
        with pytest.raises(StorageError, match=r"SlowDown.*\(after 4 attempts\)"):
            export_days(braintrust, broken, target, ALL_DAYS, ExportOptions(full_refresh=True))
    assert {key: stored.get_bytes(key) for key in stored.list("")} == before


_KILLED_EXPORT = """
import sys
from datetime import date
from bt_pipelines.engine.sync import ExportOptions, ExportTarget, export_days
from bt_pipelines.sink.schema import PROJECT_LOGS
from bt_pipelines.sink.storage import open_storage
from bt_pipelines.source.client import BraintrustClient
url, key, pid, lake, *days = sys.argv[1:]
target = ExportTarget("project_logs", PROJECT_LOGS, "project_logs", pid, "checkout-assistant",
                      (("project", "checkout-assistant"),))
export_days(BraintrustClient(url, key), open_storage(lake), target, [date.fromisoformat(d) for d in days],
            ExportOptions(page_size=25, row_group_rows=25, target_file_bytes=1, full_refresh=True))
"""


def test_a_run_killed_mid_partition_is_made_whole_by_the_next_run(bt, local_lake):
    target = target_for(bt)
    with quick_client(bt) as braintrust:
        export_days(braintrust, local_lake.storage, target, ALL_DAYS)  # a previous, good lake
    bt.set_faults(latency_ms=150)  # slow pages, so the kill lands mid-partition
    try:
        process = subprocess.Popen([sys.executable, "-c", _KILLED_EXPORT, bt.url, bt.api_key, target.object_id,
                                    str(local_lake.storage.root), *(d.isoformat() for d in ALL_DAYS)])
        folder = local_lake.storage.root / "project_logs"
        deadline = time.monotonic() + 60
        committed = {p: p.stat().st_mtime for p in folder.rglob("*.parquet")}
        while time.monotonic() < deadline and not (set(folder.rglob("*.parquet")) - set(committed)):
            time.sleep(0.05)  # until the doomed run has stored a file of its own
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL, "the run ended by itself before it could be killed"
    finally:
        bt.clear_faults()
    assert set(folder.rglob("*.parquet")) - set(committed), "the run was killed before it stored anything"
    for day in ALL_DAYS:  # the previous manifests are still exact
        assert lake_pairs_by_manifest(local_lake.storage, target.day_path(day)) == source_pairs(
            bt, target.object_id, day)
    with quick_client(bt) as braintrust:
        export_days(braintrust, local_lake.storage, target, ALL_DAYS)
    assert_exact(bt, local_lake.storage, target)  # no orphan file, no duplicate, no lost row
    assert not list((local_lake.storage.root / "_bt_pipelines" / "tmp").iterdir())  # the dead spool is gone


def lake_pairs_by_manifest(storage, path):
    from collections import Counter

    from bt_pipelines.sink.manifest import read_manifest

    from ..lakeview import read_rows

    return Counter((r["id"], str(r["_xact_id"])) for f in read_manifest(storage, path).files
                   for r in read_rows(storage, f.key))


def test_random_fault_schedules_all_end_exact(bt, lake_factory, capsys):
    target = target_for(bt)
    rng = random.Random(20261121)
    for _ in range(SCHEDULES):
        faults = {"seed": rng.randrange(10**6), "retry_after": "0",
                  "rate_limit_share": rng.choice([0, 0.1, 0.3]), "reset_share": rng.choice([0, 0.05, 0.15]),
                  "truncate_share": rng.choice([0, 0.05, 0.15]), "heavy_limit_above": rng.choice([0, 30, 60]),
                  "stale_tail_every": rng.choice([0, 2, 5]), "redirect_every": rng.choice([0, 3])}
        lake = lake_factory("local")
        bt.set_faults(**faults)
        try:
            with quick_client(bt) as braintrust:
                export_days(braintrust, lake.storage, target, ALL_DAYS, ExportOptions(page_size=40))
        finally:
            bt.clear_faults()
        assert_exact(bt, lake.storage, target)
    with capsys.disabled():
        print(f"\n{SCHEDULES} random fault schedules ran, each ending with an exact lake")


class DeniedS3(FlakyS3):
    """A real S3 client whose writes are refused, as a bucket policy without s3:PutObject would."""

    def _maybe_fail(self, operation: str) -> None:
        self.failures += 1
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                           "ResponseMetadata": {"HTTPStatusCode": 403}}, operation)


def test_no_write_permission_fails_at_once_with_the_reason(bt, s3_endpoint, no_sleep):
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket="read-only-lake")
    denied = DeniedS3(client, failures=0)
    with quick_client(bt) as braintrust, pytest.raises(StorageError, match="AccessDenied: Access Denied") as raised:
        export_days(braintrust, open_storage("s3://read-only-lake/x", s3_client=denied), target_for(bt), ALL_DAYS)
    assert denied.failures == 1 and "after 4 attempts" not in str(raised.value)  # permanent: not retried
    assert open_storage("s3://read-only-lake/x", s3_client=client).list("") == []
