"""An HTTP client for Braintrust's REST and BTQL endpoints: pooled, gzip, patient, and discreet.

Retries: 429 (honouring `Retry-After` in seconds or as an HTTP date), 5xx, timeouts, dropped
connections and bodies that end early, with exponential backoff and full jitter. 400/401/403/404
are never retried. A `303` (a large answer parked in object storage) is followed without the
Authorization header. The API key lives only in the connection's headers: it is not in
`repr()`, log lines, or exception text.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from .errors import AuthError, BraintrustError, NotFoundError, QueryRejected, RetriesExhausted

log = logging.getLogger(__name__)
DEFAULT_API_URL = "https://api.braintrust.dev"
_RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
_MAX_SERVER_MESSAGE = 2000


class BodyError(Exception):
    """The answer arrived but cannot be read (cut short, not JSON): worth asking again."""


@dataclass
class RetryPolicy:
    max_attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: a random wait up to base * 2^attempt, capped."""
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


@dataclass
class CallStats:
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0


class HeavyPage(BraintrustError):
    """500/504 on a query: the page may be too heavy; the caller can ask for fewer rows."""

    def __init__(self, status: int, message: str):
        super().__init__(f"Braintrust answered {status}: {message}")
        self.status = status


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class BraintrustClient:
    """One organisation's API, over a pooled HTTP/1.1 connection."""

    def __init__(self, api_url: str, api_key: str, *, org_name: str | None = None, timeout: float = 60.0,
                 retry: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep,
                 seed: int | None = None):
        if not api_key:
            raise AuthError("no Braintrust API key: set BRAINTRUST_API_KEY (or the api_key setting)")
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        self.org_name = org_name
        headers = {"Authorization": f"Bearer {api_key}", "Accept-Encoding": "gzip",
                   "User-Agent": "bt-pipelines"}
        if org_name:
            headers["x-bt-org-name"] = org_name
        self._http = httpx.Client(base_url=self.api_url, headers=headers,
                                  timeout=httpx.Timeout(timeout, connect=10.0), follow_redirects=False)
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.rng = random.Random(seed)
        self.stats = CallStats()

    def __repr__(self) -> str:
        return f"BraintrustClient(api_url={self.api_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BraintrustClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls ----------------------------------------------------------------------------
    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._call("GET", path, params=params, parse=_json, what=f"GET {path}")

    def btql(self, query: str, *, fmt: str = "json", version: str | None = None,
             parse: Callable[[httpx.Response], Any] | None = None, heavy_is_error: bool = False) -> Any:
        """Run a BTQL query; `parse` turns the answer into what the caller wants.

        With `heavy_is_error`, a 500/504 raises `HeavyPage` at once so the caller can ask for
        a smaller page instead of retrying the same one.
        """
        body: dict[str, Any] = {"query": query, "fmt": fmt, "query_source": "bt_pipelines"}
        if version is not None:
            body["version"] = version
        return self._call("POST", "/btql", json=body, parse=parse or _json, what=query,
                          heavy_is_error=heavy_is_error)

    def _call(self, method: str, path: str, *, parse: Callable[[httpx.Response], Any], what: str,
              heavy_is_error: bool = False, **kwargs: Any) -> Any:
        last_problem = ""
        for attempt in range(self.retry.max_attempts):
            wait: float | None = None
            try:
                response = self._send(method, path, **kwargs)
                status = response.status_code
                if status < 300:
                    return parse(response)
                message = _server_message(response)
                if status in (401, 403):
                    raise AuthError(f"Braintrust refused the API key ({status}: {message}); check "
                                    "BRAINTRUST_API_KEY and that the key can read this organisation")
                if status == 404:
                    raise NotFoundError(f"Braintrust has no {path} ({message})")
                if status in (500, 504) and heavy_is_error:
                    raise HeavyPage(status, message)
                if status not in _RETRYABLE_STATUS:
                    raise QueryRejected(message, what, status)
                if status == 429:
                    self.stats.rate_limited += 1
                    wait = parse_retry_after(response.headers.get("retry-after"))
                    if wait is not None:
                        wait = min(wait, self.retry.max_retry_after)
                last_problem = f"HTTP {status}: {message}"
            except (httpx.TransportError, BodyError) as exc:
                last_problem = f"{type(exc).__name__}: {exc}"
            if attempt + 1 == self.retry.max_attempts:
                break
            self.stats.retries += 1
            delay = wait if wait is not None else self.retry.backoff(attempt, self.rng)
            log.info("Braintrust %s failed (%s); retry %d in %.1fs", path, last_problem, attempt + 1, delay)
            self.sleep(delay)
        raise RetriesExhausted(f"Braintrust {path} kept failing after {self.retry.max_attempts} attempts; "
                               f"last: {last_problem}")

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.stats.requests += 1
        response = self._http.request(method, path, **kwargs)
        if response.status_code == 303 and "location" in response.headers:
            # A large answer parked in object storage: the signed URL must not get our key.
            response = httpx.get(response.headers["location"], timeout=self._http.timeout,
                                 headers={"Accept-Encoding": "gzip"})
        return response


def _json(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise BodyError(f"the answer is not complete JSON ({exc})") from exc


def _server_message(response: httpx.Response) -> str:
    text = response.text.strip()
    try:
        data = orjson.loads(text)
        if isinstance(data, dict):
            found = data.get("message") or data.get("Message") or data.get("error")
            if isinstance(found, dict):
                found = found.get("message")
            if found:
                text = str(found)
    except orjson.JSONDecodeError:
        pass
    return text[:_MAX_SERVER_MESSAGE] or response.reason_phrase
