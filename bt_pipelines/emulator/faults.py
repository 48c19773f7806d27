"""Deterministic fault injection: the bad days a client must survive, reproducible under a seed."""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class Faults:
    """What goes wrong, for requests whose path starts with one of `paths`.

    `*_every` = N hits every Nth matching request; `*_share` = p hits that share of them, drawn
    from `seed`. Decisions are made in request order, so a run replays exactly.
    """

    seed: int = 0
    paths: list[str] = field(default_factory=lambda: ["/btql"])
    rate_limit_every: int = 0
    rate_limit_share: float = 0.0
    retry_after: str = "1"  # seconds, or an HTTP date
    heavy_limit_above: int = 0  # a /btql query with a larger LIMIT fails with heavy_status
    heavy_status: int = 500
    latency_ms: float = 0.0
    slow_every: int = 0  # every Nth matching request answers after slow_ms: a client's read timeout
    slow_ms: float = 5000.0
    reset_every: int = 0
    reset_share: float = 0.0
    truncate_every: int = 0
    truncate_share: float = 0.0
    redirect_every: int = 0  # answer with a 303 to a one-time URL, as the real service does for big answers
    stale_tail_every: int = 0  # a page's last row comes back in an older version ("reads may repeat a row")
    max_faults: int = 0  # stop injecting after this many (0: no cap)

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Faults:
        known = {f.name: f for f in fields(cls)}
        unknown = set(data) - set(known)
        if unknown:
            raise ValueError(f"unknown fault settings {sorted(unknown)}: use {sorted(known)}")
        out = cls()
        for key, value in data.items():
            default = getattr(out, key)
            try:
                if isinstance(default, list):
                    value = [value] if isinstance(value, str) else list(value)
                elif isinstance(default, str):
                    value = str(value)
                else:
                    value = type(default)(value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"fault setting {key}={value!r} is not a {type(default).__name__}") from exc
            setattr(out, key, value)
        return out

    @classmethod
    def from_assignments(cls, items: list[str]) -> Faults:
        """`key=value` pairs, as given on the command line."""
        data: dict[str, Any] = {}
        for item in items:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"--fault takes key=value, not {item!r}")
            data[key.strip()] = value.split(",") if key.strip() == "paths" else value
        return cls.parse(data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    status: int | None = None  # an error answer instead of the real one
    retry_after: str | None = None
    reset: bool = False  # send part of the answer, then reset the connection
    truncate: bool = False  # send a well-framed answer whose body is cut short
    redirect: bool = False  # park the answer at a one-time URL and answer 303
    stale_tail: bool = False  # serve the last row of the page in its previous version
    latency_s: float = 0.0


class FaultInjector:
    def __init__(self, faults: Faults | None = None):
        self.lock = threading.Lock()
        self.configure(faults or Faults())

    def configure(self, faults: Faults) -> None:
        with self.lock:
            self.faults = faults
            self.rng = random.Random(faults.seed)
            self.count = 0
            self.injected = 0

    def decide(self, path: str, limit: int | None) -> Decision:
        f = self.faults
        if not any(path.startswith(p) for p in f.paths):
            return Decision()
        with self.lock:
            self.count += 1
            n = self.count
            draws = [self.rng.random() for _ in range(3)]  # always three: decisions stay aligned
            latency = f.latency_ms / 1000 + (f.slow_ms / 1000 if _hit(n, f.slow_every, 1.0, 0.0) else 0.0)
            if f.max_faults and self.injected >= f.max_faults:
                return Decision(latency_s=latency)
            decision = Decision(latency_s=latency)
            if _hit(n, f.rate_limit_every, draws[0], f.rate_limit_share):
                decision = Decision(status=429, retry_after=f.retry_after, latency_s=latency)
            elif f.heavy_limit_above and limit is not None and limit > f.heavy_limit_above:
                decision = Decision(status=f.heavy_status, latency_s=latency)
            elif _hit(n, f.reset_every, draws[1], f.reset_share):
                decision = Decision(reset=True, latency_s=latency)
            elif _hit(n, f.truncate_every, draws[2], f.truncate_share):
                decision = Decision(truncate=True, latency_s=latency)
            elif _hit(n, f.redirect_every, 1.0, 0.0):
                decision = Decision(redirect=True, latency_s=latency)
            elif _hit(n, f.stale_tail_every, 1.0, 0.0):
                decision = Decision(stale_tail=True, latency_s=latency)
            if decision != Decision(latency_s=latency):
                self.injected += 1
            return decision


def _hit(n: int, every: int, draw: float, share: float) -> bool:
    return (every > 0 and n % every == 0) or draw < share
