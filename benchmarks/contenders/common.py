"""What the contenders share: the bulk project and the keyset query over a range of days."""

import httpx

PROJECT = "bulk-load"


def project_id(client: httpx.Client) -> str:
    return client.get("/v1/project", params={"project_name": PROJECT}).json()["objects"][0]["id"]


def pinned_version(client: httpx.Client, pid: str) -> str:
    query = f"measures: max(_xact_id) as v | from: project_logs('{pid}')"
    return client.post("/btql", json={"query": query}).json()["data"][0]["v"]


def page_query(pid: str, start: str, end: str, after: str | None) -> str:
    keyset = f" AND _pagination_key > '{after}'" if after else ""
    return (f"select: * | from: project_logs('{pid}') spans | filter: created >= '{start}' AND created < '{end}'"
            f"{keyset} | sort: _pagination_key asc | limit: 1000")
