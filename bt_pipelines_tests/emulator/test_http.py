"""The emulator over real HTTP: auth, errors, faults, formats, objects, writes and reads."""

from __future__ import annotations

import gzip
import io
import json
import socket

import httpx
import orjson
import pyarrow.parquet as pq
import pytest

from bt_pipelines.emulator import emulator


@pytest.fixture
def bt():
    with emulator(seed="demo", days=3) as running:
        yield running


def project_id(bt, name="checkout-assistant"):
    return bt.client().get("/v1/project", params={"project_name": name}).json()["objects"][0]["id"]


def btql(client, query, **body):
    return client.post("/btql", json={"query": query, **body})


def test_only_the_configured_key_is_accepted(bt):
    assert httpx.post(f"{bt.url}/btql", json={"query": "x"}).status_code == 401
    wrong = httpx.get(f"{bt.url}/v1/project", headers={"Authorization": "Bearer sk-wrong"})
    assert wrong.status_code == 401 and "Invalid API key" in wrong.text
    assert bt.client().get("/v1/project").status_code == 200


def test_login_points_clients_at_the_emulator(bt):
    org = bt.client().post("/api/apikey/login").json()["org_info"][0]
    assert org["api_url"] == bt.url and org["name"] == "demo-org" and org["id"] == bt.store.org_id


def test_version_advertises_the_payload_limit(bt):
    assert bt.client().get("/version").json()["logs3_payload_max_bytes"] == 6 * 1024 * 1024


def test_a_bad_query_is_a_400_that_says_what(bt):
    response = btql(bt.client(), f"select: * | from: project_logs('{project_id(bt)}') | filter: a ==")
    assert response.status_code == 400
    assert "Invalid query: expected an expression" in response.text


def test_answers_are_gzipped_with_sorted_keys_and_the_cursor_header(bt):
    with bt.client() as client:
        response = btql(client, f"select: * | from: project_logs('{project_id(bt)}') | limit: 5")
    assert response.headers["content-encoding"] == "gzip"
    body = response.json()
    assert set(body) >= {"data", "schema", "cursor", "realtime_state", "freshness_state"}
    assert len(body["data"]) == 5 and all(list(r) == sorted(r) for r in body["data"])
    assert response.headers["x-bt-cursor"] == body["cursor"]


def test_jsonl_and_parquet_formats_carry_the_same_rows(bt):
    query = f"select: * | from: project_logs('{project_id(bt)}') | limit: 50"
    with bt.client() as client:
        as_json = btql(client, query).json()["data"]
        as_jsonl = [json.loads(line) for line in btql(client, query, fmt="jsonl").text.splitlines()]
        parquet = btql(client, query, fmt="parquet")
    table = pq.read_table(io.BytesIO(parquet.content))
    assert as_jsonl == as_json
    assert table.column("id").to_pylist() == [r["id"] for r in as_json]
    assert table.schema.field("is_root").type == "bool"
    assert [json.loads(v) if v else None for v in table.column("metadata").to_pylist()] == [
        r["metadata"] for r in as_json]
    assert parquet.headers["x-bt-cursor"]


def test_unknown_fmt_is_refused(bt):
    answer = btql(bt.client(), f"select: id | from: project_logs('{project_id(bt)}')", fmt="csv")
    assert answer.status_code == 400 and "unsupported fmt 'csv'" in answer.text


def test_objects_list_newest_first_and_page_with_starting_after(bt):
    with bt.client() as client:
        pid = project_id(bt)
        for i in range(5):
            assert client.post("/v1/experiment", json={"project_id": pid, "name": f"x{i}"}).status_code == 200
        listed = client.get("/v1/experiment", params={"project_id": pid}).json()["objects"]
        page1 = client.get("/v1/experiment", params={"project_id": pid, "limit": 4}).json()["objects"]
        page2 = client.get("/v1/experiment", params={"project_id": pid, "limit": 4,
                                                     "starting_after": page1[-1]["id"]}).json()["objects"]
        named = client.get("/v1/experiment", params={"project_id": pid, "experiment_name": "x2"}).json()["objects"]
        again = client.post("/v1/experiment", json={"project_id": pid, "name": "x2"}).json()
        fresh = client.post("/v1/experiment", json={"project_id": pid, "name": "x2", "ensure_new": True}).json()
    assert [o["name"] for o in listed[:5]] == ["x4", "x3", "x2", "x1", "x0"]
    assert page1 + page2 == listed
    assert [o["name"] for o in named] == ["x2"] and again["id"] == named[0]["id"]
    assert fresh["name"] == "x2-1"


def test_object_get_patch_delete(bt):
    with bt.client() as client:
        pid = project_id(bt)
        dataset = client.post("/v1/dataset", json={"project_id": pid, "name": "tmp"}).json()
        assert client.get(f"/v1/dataset/{dataset['id']}").json()["name"] == "tmp"
        assert client.patch(f"/v1/dataset/{dataset['id']}", json={"description": "d"}).json()["description"] == "d"
        assert client.delete(f"/v1/dataset/{dataset['id']}").json()["deleted_at"]
        assert client.get(f"/v1/dataset/{dataset['id']}").status_code == 404
        response = btql(client, f"select: * | from: dataset('{dataset['id']}')")
    assert response.status_code == 400 and "no dataset with id" in response.text


def test_insert_fetch_and_logs3(bt):
    with bt.client() as client:
        pid = client.post("/v1/project", json={"name": "fresh"}).json()["id"]
        events = {"events": [{"id": "a", "input": 1}, {"input": 2}]}
        ids = client.post(f"/v1/project_logs/{pid}/insert", json=events).json()
        logs3 = client.post("/logs3", json={"api_version": 2, "rows": [
            {"id": "a", "_is_merge": True, "scores": {"s": 1}, "project_id": pid, "log_id": "g"}]}).json()
        fetched = client.post(f"/v1/project_logs/{pid}/fetch", json={"limit": 10}).json()
    assert ids["row_ids"][0] == "a" and len(ids["row_ids"]) == 2
    assert logs3["ids"] == ["a"] and len(logs3["xact_id"]) == 19
    by_id = {e["id"]: e for e in fetched["events"]}
    assert by_id["a"]["scores"] == {"s": 1} and by_id["a"]["input"] == 1
    assert by_id["a"]["_xact_id"] == logs3["xact_id"]


def test_oversized_inserts_are_413(bt):
    pid = project_id(bt)
    big = {"events": [{"input": "x" * (7 * 1024 * 1024)}]}
    assert bt.client().post(f"/v1/project_logs/{pid}/insert", json=big).status_code == 413


def test_rate_limit_fault_sends_429_with_retry_after(bt):
    bt.set_faults(rate_limit_every=2, retry_after="3")
    query = f"select: id | from: project_logs('{project_id(bt)}') | limit: 1"
    with bt.client() as client:
        statuses = [btql(client, query) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 429, 200, 429]
    assert statuses[1].headers["retry-after"] == "3"


def test_heavy_pages_fail_above_a_limit_threshold(bt):
    bt.set_faults(heavy_limit_above=100, heavy_status=504)
    pid = project_id(bt)
    with bt.client() as client:
        assert btql(client, f"select: id | from: project_logs('{pid}') | limit: 500").status_code == 504
        assert btql(client, f"select: id | from: project_logs('{pid}') | limit: 100").status_code == 200


def test_faults_can_be_set_over_http_and_are_deterministic_under_a_seed(bt):
    query = f"select: id | from: project_logs('{project_id(bt)}') | limit: 1"

    def pattern():
        with bt.client() as client:
            assert client.post("/admin/faults", json={"seed": 5, "rate_limit_share": 0.5}).status_code == 200
            return [btql(client, query).status_code for _ in range(12)]

    first, second = pattern(), pattern()
    assert first == second and 429 in first and 200 in first
    assert bt.client().post("/admin/faults", json={"nonsense": 1}).status_code == 400


def test_reset_fault_drops_the_connection_mid_answer(bt):
    bt.set_faults(reset_every=1)
    with bt.client() as client, pytest.raises(httpx.TransportError):
        btql(client, f"select: * | from: project_logs('{project_id(bt)}') | limit: 200")


def test_truncate_fault_sends_a_cut_body(bt):
    bt.set_faults(truncate_every=1)
    response = btql(bt.client(), f"select: * | from: project_logs('{project_id(bt)}') | limit: 200")
    assert response.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(response.content)


def test_latency_fault_and_stats(bt):
    bt.set_faults(latency_ms=50)
    with bt.client() as client:
        btql(client, f"select: id | from: project_logs('{project_id(bt)}') | limit: 3")
        stats = client.get("/admin/stats").json()
    assert stats["requests"]["/btql"] == 1 and stats["rows_served"] == 3


def test_gzip_request_bodies_and_chunked_uploads_are_read(bt):
    body = gzip.compress(orjson.dumps({"query": f"select: id | from: project_logs('{project_id(bt)}') | limit: 2"}))
    response = bt.client().post("/btql", content=body, headers={"Content-Encoding": "gzip"})
    assert len(response.json()["data"]) == 2
    chunked = bt.client().post("/v1/project", content=iter([b'{"name": ', b'"chunky"}']))
    assert chunked.json()["name"] == "chunky"


def test_login_without_a_body_or_content_length_works(bt):
    host, port = bt.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        auth = f"Authorization: Bearer {bt.api_key}"
        sock.sendall(f"POST /api/apikey/login HTTP/1.1\r\nHost: x\r\n{auth}\r\n\r\n".encode())
        assert sock.recv(100).startswith(b"HTTP/1.1 200")


def test_redirect_fault_parks_the_answer_at_a_one_time_url_that_refuses_credentials(bt):
    bt.set_faults(redirect_every=1)
    query = {"query": f"select: id | from: project_logs('{project_id(bt)}') | limit: 2"}
    with bt.client() as client:
        answer = client.post("/btql", json=query)
        assert answer.status_code == 303
        location = answer.headers["location"]
        assert client.get(location).status_code == 400  # still carries Authorization
    assert len(httpx.get(location).json()["data"]) == 2
    assert httpx.get(location).status_code == 404  # used up
