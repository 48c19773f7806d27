"""(d) dlt's rest_api source into its filesystem destination as Parquet, with dlt's defaults."""

import sys

import dlt
from dlt.sources.rest_api import rest_api_source

url, key, pid, out = sys.argv[1:5]
source = rest_api_source({
    "client": {
        "base_url": url,
        "auth": {"type": "bearer", "token": key},
        "paginator": {"type": "cursor", "cursor_path": "cursor", "cursor_body_path": "query.cursor"},
    },
    "resources": [{
        "name": "project_logs",
        "endpoint": {
            "path": "btql", "method": "POST", "data_selector": "data",
            "json": {"query": {"select": [{"op": "star"}], "limit": 1000,
                               "from": {"op": "function", "name": {"op": "ident", "name": ["project_logs"]},
                                        "args": [{"op": "literal", "value": pid}]}}},
        },
    }],
})
pipeline = dlt.pipeline("bt_bench", destination=dlt.destinations.filesystem(bucket_url=out), dataset_name="bt",
                        pipelines_dir=f"{out}/.dlt")
info = pipeline.run(source, loader_file_format="parquet")
print(pipeline.last_trace.last_normalize_info.row_counts.get("project_logs", 0))
