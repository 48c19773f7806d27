"""Reconcile: find the committed units whose row count is no longer the source's.

Incremental reads never see a delete (a deleted row is simply not returned), nor a late
transaction that committed below a watermark already read. Both leave a unit whose manifest
counts a different number of rows than the source holds for the same range at the manifest's
own version. Counting is one aggregate query per version, whatever the number of days.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from ..sink.manifest import Manifest
from ..source import queries
from ..source.client import BraintrustClient
from ..source.traces import whole_trace_pages
from .model import ExportTarget


def differing_units(client: BraintrustClient, target: ExportTarget, manifests: dict[str, Manifest]) -> list[str]:
    """Units (day `YYYY-MM-DD` or "object") whose manifest row count differs from the source's."""
    by_version: dict[str, list[str]] = defaultdict(list)
    for unit, manifest in manifests.items():
        by_version[manifest.watermark or ""].append(unit)
    differing = []
    for version, units in by_version.items():
        counts = source_counts(client, target, units, version) if version else {}
        differing += [u for u in units if counts.get(u, 0) != manifests[u].rows]
    return sorted(differing)


def source_counts(client: BraintrustClient, target: ExportTarget, units: list[str], version: str) -> dict[str, int]:
    """The source's row count of each unit, at `version`."""
    if units == ["object"]:
        return {"object": source_count(client, target, None, version)}
    days = sorted(date.fromisoformat(u) for u in units)
    if target.whole_traces:
        return {d.isoformat(): source_count(client, target, d, version) for d in days}
    where = queries.all_of(queries.created_on_days(days[0], days[-1]), target.filter)
    answer = client.btql(queries.days_summary(target.source_kind, target.object_id, where, target.shape),
                         version=version)
    return {row["day"][:10]: int(row["n"]) for row in answer.get("data") or []}


def source_count(client: BraintrustClient, target: ExportTarget, day: date | None, version: str) -> int:
    """The source's row count of one day (or the whole object, for None), at `version`."""
    if target.whole_traces and day is not None:
        ids = {row["id"] for page in whole_trace_pages(client, target.source_kind, target.object_id,
                                                         target.filter or "true", [day], version=version,
                                                         grace=target.trace_grace) for row in page}
        return len(ids)
    day_range = None if day is None else queries.created_on_days(day, day)
    query = queries.count(target.source_kind, target.object_id, queries.all_of(day_range, target.filter), target.shape)
    return int(client.btql(query, version=version)["data"][0]["n"])
