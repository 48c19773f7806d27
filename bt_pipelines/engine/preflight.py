"""Preflight: can this configuration work? The API answers, the key is valid, every project
resolves, and the destination takes a write. Writes nothing but one probe object, which it
reads back and deletes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from ..sink.storage import Storage
from ..source.catalog import list_objects, resolve
from ..source.client import BraintrustClient
from ..source.errors import AuthError


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str


def preflight(client: BraintrustClient, open_lake: Callable[[], Storage], projects: list[str]) -> list[Finding]:
    findings = [_api(client)]
    listed = None
    if findings[0].ok:
        try:
            listed = list(list_objects(client, "project"))
            findings.append(Finding("API key", True, f"valid: it sees {len(listed)} projects"))
        except Exception as exc:  # noqa: BLE001 - every failure becomes a row of the report
            findings.append(Finding("API key", False, str(exc)))
    for name in projects:
        if listed is None:
            findings.append(Finding(f"project {name!r}", False, "not checked: the API key did not work"))
            continue
        try:
            found = resolve(listed, name)
            findings.append(Finding(f"project {name!r}", True, f"resolves to {found.id}"))
        except Exception as exc:  # noqa: BLE001
            findings.append(Finding(f"project {name!r}", False, str(exc)))
    findings.append(_destination(open_lake))
    return findings


def _api(client: BraintrustClient) -> Finding:
    try:
        version = client.get_json("/version")
    except AuthError:
        return Finding("API", True, f"{client.api_url} answers")  # the key check below says the rest
    except Exception as exc:  # noqa: BLE001
        return Finding("API", False, f"{client.api_url} does not answer: {exc}")
    name = version.get("version") if isinstance(version, dict) else None
    return Finding("API", True, f"{client.api_url} answers" + (f" ({name})" if name else ""))


def _destination(open_lake: Callable[[], Storage]) -> Finding:
    try:
        storage = open_lake()
        key = f"_bt_pipelines/preflight/{uuid.uuid4()}.probe"
        payload = b"bt_pipelines preflight probe"
        storage.put_bytes(key, payload)
        try:
            if storage.get_bytes(key) != payload:
                return Finding("destination", False, f"{storage.uri(key)} did not read back what was written")
        finally:
            storage.delete([key])
        return Finding("destination", True, f"{storage.url} takes writes, reads and deletes")
    except Exception as exc:  # noqa: BLE001
        return Finding("destination", False, str(exc))


def report(findings: list[Finding]) -> str:
    width = max(len(f.check) for f in findings)
    lines = [f"{'check'.ljust(width)}  result  detail", f"{'-' * width}  ------  ------"]
    lines += [f"{f.check.ljust(width)}  {'ok' if f.ok else 'FAILED':<6}  {f.detail}" for f in findings]
    failed = sum(not f.ok for f in findings)
    lines.append(f"\n{len(findings) - failed} ok, {failed} failed")
    return "\n".join(lines)
