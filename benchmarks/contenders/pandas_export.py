"""(e) The naive way: every page into one pandas DataFrame, then `to_parquet(partition_cols=...)`."""

import json
import sys

import httpx
import pandas as pd

from .common import page_query, pinned_version, project_id

url, key, start, end, out = sys.argv[1:6]
rows: list[dict] = []
with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:
    pid = project_id(client)
    version = pinned_version(client, pid)
    after = None
    while page := client.post("/btql", json={"query": page_query(pid, start, end, after),
                                             "version": version}).json()["data"]:
        rows += page
        after = page[-1]["_pagination_key"]
frame = pd.DataFrame(rows)
for column in frame.columns:  # nested values as JSON text, or pyarrow cannot settle on a type
    if frame[column].map(lambda v: isinstance(v, dict | list)).any():
        frame[column] = frame[column].map(lambda v: None if v is None else json.dumps(v))
frame["date"] = frame["created"].str[:10]
frame.to_parquet(out, partition_cols=["date"])
print(len(frame))
