"""Asset checks on every exported partition, shown in the Dagster UI next to the asset.

- `matches_source` (ERROR): the partition's rows equal the source's count for the same range at
  the version the export was pinned to. A failure means rows went missing: re-materialize.
- `unique_ids` (ERROR, blocking): no id twice in a partition.
- `schema` (ERROR, blocking): every file has the documented schema of this version.
(Freshness is a `FreshnessPolicy` on each daily asset: see assets.py.)
A check over a range of partitions (a backfill run) checks each and names the ones that fail.

No `from __future__ import annotations` here: Dagster reads these annotations at runtime.
"""

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

import dagster as dg

from ..engine.checks import CheckOutcome, matches_schema, matches_source, unique_ids
from ..engine.sync import ExportTarget
from ..sink.layout import PartitionPath
from ..sink.schema import TableSchema
from ..sink.storage import Storage
from ..source.client import BraintrustClient
from ..source.errors import BraintrustError
from .resources import BraintrustResource, LakeResource


@dataclass(frozen=True)
class Unit:
    """One checked partition: where it lives, its day (None for an object), what it exports."""

    key: str
    path: PartitionPath
    day: date | None
    target: ExportTarget


PathsOf = Callable[[Sequence[str]], list[tuple[str, PartitionPath]]]  # partition keys -> folders, no API call
UnitsOf = Callable[[BraintrustClient, Sequence[str]], list[Unit]]  # partition keys -> what they export
Evaluate = Callable[[list[str], BraintrustResource, Storage], dict[str, CheckOutcome]]


def build_partition_checks(asset_key: dg.AssetKey, partitions_def: dg.PartitionsDefinition | None,
                           schema: TableSchema, paths_of: PathsOf, units_of: UnitsOf | None = None
                           ) -> list[dg.AssetChecksDefinition]:
    """The lake-only checks, and `matches_source` when `units_of` says what each partition exports."""

    def each_path(check: Callable[[Storage, PartitionPath], CheckOutcome]) -> Evaluate:
        return lambda keys, braintrust, storage: {key: check(storage, path) for key, path in paths_of(keys)}

    def against_source(keys: list[str], braintrust: BraintrustResource, storage: Storage) -> dict[str, CheckOutcome]:
        assert units_of is not None
        with braintrust.client() as client:
            return {unit.key: _matches_source(client, storage, unit) for unit in units_of(client, keys)}

    checks = [
        _check(asset_key, partitions_def, "unique_ids", blocking=True, description="no id appears twice in a partition",
               evaluate=each_path(unique_ids)),
        _check(asset_key, partitions_def, "schema", blocking=True, description="every file has the documented schema",
               evaluate=each_path(lambda storage, path: matches_schema(storage, path, schema))),
    ]
    if units_of is not None:
        checks.append(_check(asset_key, partitions_def, "matches_source", blocking=False,
                             description="rows equal Braintrust's count for the same range at the pinned version",
                             evaluate=against_source))
    return checks


def _matches_source(client: BraintrustClient, storage: Storage, unit: Unit) -> CheckOutcome:
    try:
        return matches_source(client, storage, unit.target, unit.path, unit.day)
    except BraintrustError as exc:
        return CheckOutcome(False, f"Braintrust could not count the source ({exc}); if the object was deleted, "
                                   "materialize the partition to remove it from the lake")


def _check(asset_key: dg.AssetKey, partitions_def: dg.PartitionsDefinition | None, name: str, *, blocking: bool,
           description: str, evaluate: Evaluate) -> dg.AssetChecksDefinition:
    with warnings.catch_warnings():  # partitioned asset checks are a Dagster "preview"; they work as used here
        warnings.simplefilter("ignore", dg.PreviewWarning)

        @dg.asset_check(asset=asset_key, name=name, partitions_def=partitions_def, blocking=blocking,
                        description=description)
        def _evaluate(context: dg.AssetCheckExecutionContext, braintrust: BraintrustResource,
                      lake: LakeResource) -> dg.AssetCheckResult:
            return _result(evaluate(_keys(context, partitions_def), braintrust, lake.storage()))

    return _evaluate


def _keys(context: dg.AssetCheckExecutionContext, partitions_def: dg.PartitionsDefinition | None) -> list[str]:
    return [""] if partitions_def is None else list(context.partition_keys)


def _result(outcomes: dict[str, CheckOutcome]) -> dg.AssetCheckResult:
    failed = {key: o for key, o in outcomes.items() if not o.passed}
    if len(outcomes) == 1:
        (outcome,) = outcomes.values()
        return dg.AssetCheckResult(passed=outcome.passed, description=outcome.description,
                                   metadata=outcome.metadata, severity=dg.AssetCheckSeverity.ERROR)
    description = (f"all {len(outcomes)} partitions pass" if not failed else
                   f"{len(failed)} of {len(outcomes)} partitions fail: "
                   + "; ".join(f"{key}: {o.description}" for key, o in list(failed.items())[:5]))
    return dg.AssetCheckResult(passed=not failed, description=description, severity=dg.AssetCheckSeverity.ERROR,
                               metadata={"partitions": len(outcomes), "failed_partitions": ", ".join(failed)})
