"""Braintrust's objects: list them, and resolve the names people write in config to ids."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .client import BraintrustClient
from .errors import NotFoundError


@dataclass(frozen=True)
class BraintrustObject:
    kind: str  # project | experiment | dataset
    id: str
    name: str
    project_id: str | None
    created: str | None
    raw: dict[str, Any]


def list_objects(client: BraintrustClient, kind: str, *, project_id: str | None = None,
                 page_size: int = 100) -> Iterator[BraintrustObject]:
    """Every live object of a kind, newest first, paging with `starting_after`."""
    params: dict[str, Any] = {"limit": page_size}
    if client.org_name:
        params["org_name"] = client.org_name
    if project_id:
        params["project_id"] = project_id
    while True:
        objects = client.get_json(f"/v1/{kind}", params)["objects"]
        for raw in objects:
            yield BraintrustObject(kind, raw["id"], raw["name"], raw.get("project_id"), raw.get("created"), raw)
        if len(objects) < page_size:
            return
        params["starting_after"] = objects[-1]["id"]


def resolve(candidates: list[BraintrustObject], wanted: str, kind: str = "project") -> BraintrustObject:
    """As `bt` does: an id wins, then the exact name, then a unique case-insensitive name."""
    for match in (
        [o for o in candidates if o.id == wanted],
        [o for o in candidates if o.name == wanted],
        [o for o in candidates if o.name.casefold() == wanted.casefold()],
    ):
        if len(match) == 1:
            return match[0]
        if len(match) > 1:
            names = ", ".join(f"{o.name!r} ({o.id})" for o in match)
            raise NotFoundError(f"{kind} {wanted!r} is ambiguous: {names}; use the id instead")
    close = difflib.get_close_matches(wanted, [o.name for o in candidates], n=5, cutoff=0.4)
    hint = f"; closest existing: {', '.join(repr(n) for n in close)}" if close else ""
    raise NotFoundError(f"no {kind} named {wanted!r} in this Braintrust organisation{hint}")


def resolve_projects(client: BraintrustClient, wanted: list[str]) -> dict[str, BraintrustObject]:
    """Map each configured project (name or id) to its object, listing the org once."""
    projects = list(list_objects(client, "project"))
    return {name: resolve(projects, name) for name in wanted}
