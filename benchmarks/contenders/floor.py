"""(a) The floor: fetch every page of the query bt_pipelines runs, with httpx, and throw it away."""

import sys

import httpx
import orjson

from .common import page_query, pinned_version, project_id

url, key, start, end = sys.argv[1:5]
headers = {"Authorization": f"Bearer {key}", "Accept-Encoding": "gzip"}
rows = 0
with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
    pid = project_id(client)
    version = pinned_version(client, pid)
    after = None
    while True:
        body = client.post("/btql", json={"query": page_query(pid, start, end, after), "fmt": "jsonl",
                                          "version": version}).content.rstrip(b"\n")
        if not body:
            break
        last = orjson.loads(body[body.rfind(b"\n") + 1 :])["_pagination_key"]
        if last == after:
            break
        rows += body.count(b"\n") + 1
        after = last
print(rows)
