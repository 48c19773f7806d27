"""Experiments and datasets as Dagster partitions: stable keys, and their current versions."""

from __future__ import annotations

from dataclasses import dataclass

from ..sink.layout import slugify
from ..source import queries
from ..source.catalog import BraintrustObject, list_objects
from ..source.client import BraintrustClient
from ..source.reader import read_watermark

KINDS = {"experiments": "experiment", "datasets": "dataset"}  # lake table -> Braintrust object kind
_IDS_PER_QUERY = 50


def object_keys(objects: list[BraintrustObject]) -> dict[str, BraintrustObject]:
    """Partition key -> object. The key is the name's slug (names are unique in a project);
    when two names give one slug, the older object keeps it and the newer gets its id's start."""
    keys: dict[str, BraintrustObject] = {}
    for obj in sorted(objects, key=lambda o: (o.created or "", o.id)):
        key = slugify(obj.name)
        if key in keys:
            key = f"{key}-{obj.id[:8]}"
        keys[key] = obj
    return keys


@dataclass(frozen=True)
class Listing:
    project: BraintrustObject
    by_key: dict[str, BraintrustObject]


def list_project_objects(client: BraintrustClient, table: str, project: BraintrustObject) -> Listing:
    return Listing(project, object_keys(list(list_objects(client, KINDS[table], project_id=project.id))))


def object_versions(client: BraintrustClient, table: str, objects: list[BraintrustObject]) -> dict[str, str | None]:
    """Each object's newest `_xact_id` (None when it has no rows): its version, for change detection."""
    kind = KINDS[table]
    if kind == "dataset":  # one id per dataset() source; the watermark also sees deleted rows
        return {obj.id: read_watermark(client, kind, obj.id) for obj in objects}
    versions: dict[str, str | None] = {obj.id: None for obj in objects}
    for start in range(0, len(objects), _IDS_PER_QUERY):
        chunk = objects[start : start + _IDS_PER_QUERY]
        ids = ", ".join(queries.quote(o.id) for o in chunk)
        query = f"dimensions: experiment_id as id | measures: max(_xact_id) as version | from: experiment({ids})"
        for row in client.btql(query)["data"]:
            versions[row["id"]] = row["version"]
    return versions


def object_counts(client: BraintrustClient, table: str, obj: BraintrustObject) -> tuple[int, str | None]:
    """Rows and newest `_xact_id` of one experiment or dataset, for its catalog row."""
    query = f"measures: count(1) as n, max(_xact_id) as version | from: {queries.source(KINDS[table], obj.id)}"
    row = client.btql(query)["data"][0]
    return int(row["n"]), row["version"]
