"""Exporting project logs: the lake equals the source, day by day, on every backend and format."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bt_pipelines.emulator import emulator
from bt_pipelines.engine.sync import ExportOptions, ExportTarget, export_days, split_days
from bt_pipelines.sink.layout import slugify
from bt_pipelines.sink.manifest import read_manifest
from bt_pipelines.sink.schema import PROJECT_LOGS
from bt_pipelines.sink.storage import StorageError, open_storage
from bt_pipelines.source.catalog import resolve_projects
from bt_pipelines.source.client import BraintrustClient, RetryPolicy
from bt_pipelines.source.errors import AuthError, NotFoundError, QueryRejected
from bt_pipelines.source.reader import PageReader

from ..lakeview import assert_lake_equals_source as lake_equals_source
from ..lakeview import lake_pairs, source_pairs

DAYS = 4
TODAY = datetime.now(UTC).date()
ALL_DAYS = [TODAY - timedelta(days=i) for i in reversed(range(DAYS))]


@pytest.fixture(scope="module")
def bt():
    with emulator(seed="demo", days=DAYS) as running:
        yield running


def client_for(bt, **kwargs) -> BraintrustClient:
    return BraintrustClient(bt.url, bt.api_key, retry=RetryPolicy(base_delay=0.01, max_delay=0.05),
                            sleep=lambda s: None, **kwargs)


def target_for(bt, name: str = "checkout-assistant", **kwargs) -> ExportTarget:
    with client_for(bt) as client:
        project = resolve_projects(client, [name])[name]
    return ExportTarget("project_logs", PROJECT_LOGS, "project_logs", project.id, project.name,
                        (("project", slugify(project.name)),), **kwargs)


def export(bt, lake_storage, days=ALL_DAYS, target=None, **options):
    with client_for(bt) as client:
        return export_days(client, lake_storage, target or target_for(bt), days, ExportOptions(**options))


def assert_lake_equals_source(bt, storage, target, days=ALL_DAYS):
    lake_equals_source(bt, storage, target, days)


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_every_day_in_the_lake_equals_the_source(bt, lake, fmt):
    target = target_for(bt)
    result = export(bt, lake.storage, target=target, format=fmt)
    assert [p.day for p in result.partitions] == ALL_DAYS
    assert result.rows_written > 300
    assert_lake_equals_source(bt, lake.reopen(), target)
    manifest = read_manifest(lake.storage, target.day_path(ALL_DAYS[0]))
    assert manifest.format == fmt and manifest.watermark == result.watermark
    assert all(f.key.endswith(".parquet" if fmt == "parquet" else ".jsonl.gz") for f in manifest.files)


def test_a_full_refresh_gives_the_same_rows_and_no_extra_files(bt, local_lake):
    target = target_for(bt)
    export(bt, local_lake.storage, target=target)
    first = {d: lake_pairs(local_lake.storage, target.day_path(d)) for d in ALL_DAYS}
    second_result = export(bt, local_lake.storage, target=target, full_refresh=True)
    assert {d: lake_pairs(local_lake.storage, target.day_path(d)) for d in ALL_DAYS} == first
    assert all(p.removed for p in second_result.partitions if p.manifest.rows)  # the old files went
    assert_lake_equals_source(bt, local_lake.storage, target)


def test_rows_logged_later_are_picked_up_by_the_next_materialization(bt, local_lake):
    target = target_for(bt, "Support Bot EU")
    export(bt, local_lake.storage, target=target)
    bt.store.write([("project_logs", target.object_id, {"id": f"late-{i}", "input": i}) for i in range(5)])
    existing = next(iter(source_pairs(bt, target.object_id, TODAY)))[0]
    bt.store.write([("project_logs", target.object_id, {"id": existing, "_is_merge": True, "scores": {"late": 1}})])
    export(bt, local_lake.storage, days=[TODAY], target=target)
    pairs = lake_pairs(local_lake.storage, target.day_path(TODAY))
    assert {f"late-{i}" for i in range(5)} <= {i for i, _ in pairs}
    assert_lake_equals_source(bt, local_lake.storage, target, [TODAY])


def test_one_ranged_run_and_one_run_per_day_give_the_same_lake(bt, lake_factory):
    target = target_for(bt)
    ranged, daily = lake_factory("local"), lake_factory("local")
    export(bt, ranged.storage, target=target)
    for day in ALL_DAYS:
        export(bt, daily.storage, days=[day], target=target)
    for day in ALL_DAYS:
        assert lake_pairs(ranged.storage, target.day_path(day)) == lake_pairs(daily.storage, target.day_path(day))


class CountingClient(BraintrustClient):
    """Counts the queries in flight at once (instrumentation: every call still goes to the emulator)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lock, self.in_flight, self.most_in_flight = threading.Lock(), 0, 0

    def btql(self, query, **kwargs):
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return super().btql(query, **kwargs)
        finally:
            with self.lock:
                self.in_flight -= 1


def test_several_runs_of_days_are_read_at_once_and_give_the_same_lake(bt, lake_factory):
    target = target_for(bt)
    lakes, most_in_flight = {}, {}
    bt.set_faults(latency_ms=100)  # every page waits: readers started together are then sure to overlap
    try:
        for streams in (1, 4):
            lakes[streams] = lake_factory("local")
            with CountingClient(bt.url, bt.api_key) as client:  # pages of 25: every day holds several
                export_days(client, lakes[streams].storage, target, ALL_DAYS,
                            ExportOptions(read_streams=streams, page_size=25))
            most_in_flight[streams] = client.most_in_flight
    finally:
        bt.clear_faults()
    assert most_in_flight[1] == 1 and 2 <= most_in_flight[4] <= 4
    for day in ALL_DAYS:
        assert lake_pairs(lakes[4].storage, target.day_path(day)) == lake_pairs(lakes[1].storage, target.day_path(day))
    assert_lake_equals_source(bt, lakes[4].storage, target)


def test_a_run_with_fewer_rows_than_two_pages_is_one_stream(bt, local_lake):
    bt.set_faults(latency_ms=50)  # several streams would surely overlap
    try:
        with CountingClient(bt.url, bt.api_key) as client:  # a few hundred rows over 4 days, pages of 1000
            export_days(client, local_lake.storage, target_for(bt), ALL_DAYS, ExportOptions(read_streams=4))
    finally:
        bt.clear_faults()
    assert client.most_in_flight == 1


class CountlessClient(BraintrustClient):
    """The per-day count query fails (the rest goes to the emulator as usual)."""

    def btql(self, query, **kwargs):
        if query.startswith("dimensions: day(created)"):
            raise QueryRejected("the count timed out", query, 504)
        return super().btql(query, **kwargs)


def test_a_failed_count_only_costs_the_balance(bt, local_lake):
    target = target_for(bt)
    with CountlessClient(bt.url, bt.api_key) as client:
        export_days(client, local_lake.storage, target, ALL_DAYS, ExportOptions(read_streams=2, page_size=25))
    assert_lake_equals_source(bt, local_lake.storage, target)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.integers(0, 1000) | st.just(0), min_size=1, max_size=40), streams=st.integers(1, 8))
def test_days_split_into_contiguous_runs_of_about_equal_rows(rows, streams):
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(len(rows))]
    runs = split_days(days, streams, rows)
    assert [d for run in runs for d in run] == days and 1 <= len(runs) <= streams and all(runs)
    totals = [sum(rows[days.index(d)] for d in run) for run in runs]
    if sum(rows):
        assert all(totals)  # no reader without rows
        assert max(totals) <= sum(rows) / streams + max(rows)
    else:
        assert runs == [days]


def test_days_split_evenly_by_default_and_bad_stream_counts_are_refused():
    ten = [date(2026, 1, 1) + timedelta(days=i) for i in range(10)]
    assert sorted(len(r) for r in split_days(ten, 3)) == [3, 3, 4]
    assert split_days(ten[:1], 4) == [ten[:1]]
    for bad in (0, 9, True, 2.5, "2"):
        with pytest.raises(ValueError, match="read_streams must be a whole number from 1 to 8"):
            ExportOptions(read_streams=bad)


@pytest.mark.parametrize("faults", [
    {"rate_limit_every": 3, "retry_after": "0"},
    {"heavy_limit_above": 30},
    {"reset_every": 4},
    {"truncate_every": 3},
    {"seed": 3, "rate_limit_share": 0.2, "reset_share": 0.1, "truncate_share": 0.1, "heavy_limit_above": 40,
     "retry_after": "0"},
], ids=["429-bursts", "500-on-big-pages", "reset-mid-page", "truncated-body", "mixed"])
def test_faults_still_end_with_exact_partitions(bt, local_lake, faults):
    target = target_for(bt)
    bt.set_faults(**faults)
    try:
        result = export(bt, local_lake.storage, target=target, page_size=50)  # many pages, many faults
    finally:
        bt.clear_faults()
    assert result.retries > 0 or result.heavy_pages > 0
    assert_lake_equals_source(bt, local_lake.storage, target)


def read_all_with_faults(bt, project_id: str, **faults) -> tuple[int, PageReader]:
    """Read every row of the project through a PageReader while the emulator injects `faults`."""
    bt.set_faults(**faults)
    try:
        with client_for(bt) as client:
            reader = PageReader(client, "project_logs", project_id, "created >= '2000-01-01'", version=None)
            return sum(len(p) for p in reader.pages()), reader
    finally:
        bt.clear_faults()


def test_heavy_pages_shrink_the_limit_then_grow_back(bt, local_lake):
    pid = target_for(bt).object_id
    total = bt.client().post("/btql", json={"query": f"measures: count(1) as n | from: project_logs('{pid}')"})
    rows, reader = read_all_with_faults(bt, pid, heavy_limit_above=100)
    assert rows == total.json()["data"][0]["n"]
    assert reader.stats.heavy_pages >= 4  # 1000, 500, 250, 125 refused; then 62 rows a page
    assert reader.stats.limits[0] == 62 and max(reader.stats.limits) <= 100


def test_the_page_size_doubles_again_once_heavy_pages_stop(bt):
    pid = target_for(bt).object_id
    rows, reader = read_all_with_faults(bt, pid, heavy_limit_above=100, max_faults=4)  # 4 refused, then none
    assert rows > 62 + 124  # enough rows for the second page to be asked at twice the size
    assert reader.stats.heavy_pages == 4 and reader.stats.limits[:3] == [62, 124, 248]


def test_an_unknown_project_lists_the_closest_names(bt):
    with client_for(bt) as client, pytest.raises(NotFoundError, match="closest existing: 'checkout-assistant'"):
        resolve_projects(client, ["checkout-asistant"])


def test_projects_resolve_by_id_exact_name_or_unique_case_insensitive_name(bt):
    with client_for(bt) as client:
        by_name = resolve_projects(client, ["Support Bot EU", "support bot eu"])
        project = by_name["Support Bot EU"]
        assert by_name["support bot eu"] == project
        assert resolve_projects(client, [project.id])[project.id] == project


def test_a_bad_key_fails_once_and_leaves_the_lake_untouched(bt, local_lake):
    target = target_for(bt)
    export(bt, local_lake.storage, target=target)
    before = {k: local_lake.storage.get_bytes(k) for k in local_lake.storage.list("project_logs")}
    bad = BraintrustClient(bt.url, "sk-not-the-key", sleep=lambda s: None)
    with pytest.raises(AuthError) as raised:
        export_days(bad, local_lake.storage, target, ALL_DAYS)
    assert bad.stats.requests == 1  # no retry storm
    assert "sk-not-the-key" not in str(raised.value) and "sk-not-the-key" not in repr(bad)
    assert {k: local_lake.storage.get_bytes(k) for k in local_lake.storage.list("project_logs")} == before


def test_a_missing_bucket_is_a_clear_error(bt, s3_endpoint):
    from ..servers import s3_client

    storage = open_storage("s3://no-such-bucket-here/x", s3_client=s3_client(s3_endpoint))
    with pytest.raises(StorageError, match="NoSuchBucket.*check that the bucket exists") as raised:
        export(bt, storage)
    assert "/tmp/" not in str(raised.value)  # the message names the lake's object, not a spool file


def test_an_unwritable_destination_fails_cleanly_and_keeps_committed_partitions(bt, local_lake):
    target = target_for(bt)
    export(bt, local_lake.storage, days=ALL_DAYS[:-1], target=target)
    before = {k: local_lake.storage.get_bytes(k) for k in local_lake.storage.list("project_logs")}
    blocker = local_lake.storage.root / target.day_path(ALL_DAYS[-1]).folder
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the partition's folder must go")
    with pytest.raises(StorageError, match="could not write"):
        export(bt, local_lake.storage, target=target)
    after = {k: local_lake.storage.get_bytes(k) for k in local_lake.storage.list("project_logs")}
    assert after == {**before, target.day_path(ALL_DAYS[-1]).folder: b"a file where the partition's folder must go"}


def test_an_empty_day_gets_an_empty_manifest(bt, local_lake):
    target = target_for(bt)
    long_ago = date(2020, 1, 1)
    result = export(bt, local_lake.storage, days=[long_ago], target=target)
    assert result.partitions[0].manifest.rows == 0
    assert read_manifest(local_lake.storage, target.day_path(long_ago)).files == []


def test_files_roll_at_the_size_target_and_the_manifest_lists_them_all(bt, local_lake):
    target = target_for(bt)
    result = export(bt, local_lake.storage, days=[ALL_DAYS[0]], target=target, target_file_bytes=10_000,
                    row_group_rows=20, page_size=25)
    manifest = result.partitions[0].manifest
    assert len(manifest.files) >= 2
    assert_lake_equals_source(bt, local_lake.storage, target, [ALL_DAYS[0]])
    ranges = sorted((f.min_pagination_key, f.max_pagination_key) for f in manifest.files)
    assert all(a[1] < b[0] for a, b in zip(ranges, ranges[1:], strict=False))  # files hold disjoint key ranges


def test_leftovers_of_a_crashed_run_are_removed_by_the_next_commit(bt, local_lake):
    target = target_for(bt)
    export(bt, local_lake.storage, days=[ALL_DAYS[0]], target=target)
    folder = local_lake.storage.root / target.day_path(ALL_DAYS[0]).folder
    (folder / "0000-orphan-from-a-killed-run.parquet").write_bytes(b"half a file")
    dead_spool = local_lake.storage.root / "_bt_pipelines" / "tmp" / f"run.{socket.gethostname()}.999999.abc"
    dead_spool.mkdir(parents=True)
    (dead_spool / "x.parquet").write_bytes(b"partial")
    late = {"id": "after-the-crash", "created": f"{ALL_DAYS[0]}T08:00:00Z"}
    bt.store.write([("project_logs", target.object_id, late)])
    result = export(bt, local_lake.storage, days=[ALL_DAYS[0]], target=target)  # an incremental commit
    assert any("orphan" in key for key in result.partitions[0].removed)
    assert not dead_spool.exists()
    assert_lake_equals_source(bt, local_lake.storage, target, [ALL_DAYS[0]])


def test_a_stale_version_at_a_page_boundary_never_hides_the_newer_one(bt, local_lake):
    target = target_for(bt)
    bt.set_faults(stale_tail_every=1)  # every page's last row comes back in its previous version
    try:  # one reader: its pages of 25 end on rows with older versions (two readers' pages happen not to)
        result = export(bt, local_lake.storage, target=target, page_size=25, read_streams=1)
    finally:
        bt.clear_faults()
    assert result.stale_replaced > 0  # stale versions did end pages, and were replaced
    assert_lake_equals_source(bt, local_lake.storage, target)


def test_pages_resume_at_the_last_key_and_hold_back_its_rows():
    from bt_pipelines.source.reader import _hold_back_tail

    rows = [{"_pagination_key": k, "id": i} for i, k in enumerate(["p1", "p2", "p3", "p3"])]
    assert _hold_back_tail(rows) == (rows[:2], rows[2:])
    assert _hold_back_tail(rows[2:]) == ([], rows[2:])
    assert _hold_back_tail([]) == ([], [])
