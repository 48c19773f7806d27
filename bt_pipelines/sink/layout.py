"""Where things go in the lake: Hive-partitioned data folders, and manifests beside them."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

MANIFEST_ROOT = "_bt_pipelines/manifests"


def slugify(name: str) -> str:
    """A stable, path-safe slug: lower-case ASCII letters, digits, `-` and `_` only.

    Nothing a name contains (`/`, `..`, spaces, quotes, unicode) survives into the path; a
    name with no ASCII letters or digits gets a slug from its hash.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9_]+", "-", ascii_name.lower()).strip("-_")
    if not slug:
        slug = "x-" + hashlib.sha256(name.encode()).hexdigest()[:10]
    return slug[:100]


@dataclass(frozen=True)
class PartitionPath:
    """One partition of one table: `{table}/{key}={value}/.../date=YYYY-MM-DD`."""

    table: str
    keys: tuple[tuple[str, str], ...]  # e.g. (("project", "checkout-assistant"), ("date", "2026-05-01"))

    @property
    def folder(self) -> str:
        return "/".join([self.table, *(f"{k}={v}" for k, v in self.keys)])

    @property
    def manifest_key(self) -> str:
        return f"{MANIFEST_ROOT}/{self.folder}.json"

    def file_key(self, name: str) -> str:
        return f"{self.folder}/{name}"
