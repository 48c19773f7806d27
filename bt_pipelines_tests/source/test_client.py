"""The Braintrust client: retries, Retry-After, redirects, errors that say what, and no leaked key."""

from __future__ import annotations

import logging
import time
from email.utils import formatdate

import pytest

from bt_pipelines.emulator import emulator
from bt_pipelines.source.client import BraintrustClient, RetryPolicy, parse_retry_after
from bt_pipelines.source.errors import AuthError, QueryRejected, RetriesExhausted

KEY = "sk-secret-test-key-1234567890"


@pytest.fixture(scope="module")
def bt():
    with emulator(seed="demo", days=2, api_key=KEY) as running:
        yield running


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def client(bt, waits):
    with BraintrustClient(bt.url, KEY, sleep=waits.append, seed=1) as made:
        yield made
    bt.clear_faults()


def project_id(bt) -> str:
    return bt.store.list_objects("project")[0]["id"]


def test_retry_after_is_read_as_seconds_or_an_http_date():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5
    assert 9 <= parse_retry_after(formatdate(time.time() + 10, usegmt=True)) <= 10
    assert parse_retry_after(formatdate(time.time() - 60, usegmt=True)) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_429_waits_as_long_as_retry_after_says(bt, client, waits):
    bt.set_faults(rate_limit_every=1, retry_after="7", max_faults=2)
    rows = client.btql(f"select: id | from: project_logs('{project_id(bt)}') | limit: 1")["data"]
    assert len(rows) == 1
    assert waits == [7.0, 7.0] and client.stats.rate_limited == 2


def test_5xx_and_dropped_connections_back_off_with_jitter(bt, client, waits):
    bt.set_faults(reset_every=1, max_faults=3)
    client.btql(f"select: id | from: project_logs('{project_id(bt)}') | limit: 1")
    assert len(waits) == 3 and all(0 <= w <= RetryPolicy().base_delay * 2**i for i, w in enumerate(waits))


def test_retries_give_up_with_the_last_problem(bt, waits):
    bt.set_faults(truncate_every=1)
    client = BraintrustClient(bt.url, KEY, sleep=waits.append, retry=RetryPolicy(max_attempts=3))
    with client, pytest.raises(RetriesExhausted, match="after 3 attempts; last: BodyError"):
        client.btql(f"select: * | from: project_logs('{project_id(bt)}') | limit: 50")
    bt.clear_faults()


def test_a_rejected_query_shows_the_server_message_and_the_query(bt, client):
    with pytest.raises(QueryRejected) as raised:
        client.btql(f"select: * | from: project_logs('{project_id(bt)}') | filter: nonsense(")
    assert "expected an expression" in raised.value.server_message
    assert "filter: nonsense(" in str(raised.value)
    assert client.stats.requests == 1


def test_a_bad_key_is_refused_once_without_showing_the_key(bt, caplog):
    caplog.set_level(logging.DEBUG)
    with BraintrustClient(bt.url, "sk-wrong-key-abcdef", sleep=lambda s: None) as client:
        with pytest.raises(AuthError) as raised:
            client.get_json("/v1/project")
        assert client.stats.requests == 1
    assert "check BRAINTRUST_API_KEY" in str(raised.value)
    assert "sk-wrong-key" not in str(raised.value) + repr(client) + caplog.text


def test_a_missing_key_is_a_clear_error():
    with pytest.raises(AuthError, match="set BRAINTRUST_API_KEY"):
        BraintrustClient("http://127.0.0.1:1", "")


def test_the_key_never_reaches_logs_or_reprs(bt, client, caplog):
    caplog.set_level(logging.DEBUG)
    bt.set_faults(rate_limit_every=2, retry_after="0")
    for _ in range(4):
        client.btql(f"select: id | from: project_logs('{project_id(bt)}') | limit: 1")
    assert KEY not in caplog.text and KEY not in repr(client) and KEY not in str(vars(client.stats))


def test_a_303_is_followed_without_the_authorization_header(bt, client):
    bt.set_faults(redirect_every=1)
    rows = client.btql(f"select: id | from: project_logs('{project_id(bt)}') | limit: 3")["data"]
    assert len(rows) == 3  # the blob URL refuses requests that carry Authorization
