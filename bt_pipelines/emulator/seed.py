"""Seeded organisations: a deterministic demo org, and a bulk generator for benchmarks."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from .ids import MAX_ROWS_PER_XACT, format_ts, pagination_key
from .store import Store, object_key

DEMO_PROJECTS = ("checkout-assistant", "Support Bot EU")
_QUESTIONS = [
    "Where is my order {n}?", "Can I change the delivery address for order {n}?",
    "How do I return a damaged item from order {n}?", "Do you ship to Norway?",
    "Why was my card declined on order {n}?", "What is your refund policy for sale items?",
    "Can I combine two discount codes?", "My package {n} says delivered but I never got it.",
]
_ANSWERS = [
    "Your order {n} left our warehouse yesterday and should arrive within two working days.",
    "I have updated the delivery address. You will receive a confirmation email shortly.",
    "I'm sorry about that. I've opened return case R-{n}; print the label from the link we emailed.",
    "Yes, we ship to Norway; delivery takes 3-5 working days and duties are included.",
    "The bank declined the payment. Please try another card or contact your bank.",
]
_MODELS = ["gpt-4o-mini", "claude-3-5-haiku", "gpt-4.1"]
_TOOLS = ["lookup_order", "update_address", "create_return", "check_shipping_zone"]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _hex(rng: random.Random, n: int) -> str:
    return "%0*x" % (n, rng.getrandbits(n * 4))


@dataclass
class _Plan:
    """Writes to apply in time order: (at seconds, [(source, object id, event)])."""

    writes: list[tuple[float, list[tuple[str, str, dict[str, Any]]]]] = field(default_factory=list)

    def add(self, at: float, events: list[tuple[str, str, dict[str, Any]]]) -> None:
        self.writes.append((at, events))

    def apply(self, store: Store, now: float) -> None:
        for at, events in sorted(self.writes, key=lambda w: w[0]):
            store.write(events, at=min(at, now))


def _trace(rng: random.Random, start: float, n: int) -> list[dict[str, Any]]:
    """A realistic trace: a task root, LLM and tool calls, and a scorer span."""
    root_span, root_id = _hex(rng, 16), _hex(rng, 32)
    question = rng.choice(_QUESTIONS).format(n=n)
    answer = rng.choice(_ANSWERS).format(n=n)
    model = rng.choice(_MODELS)
    user = f"user-{rng.randrange(500):03d}"
    t = start
    spans = []

    def span(name: str, kind: str, parent: str | None, duration: float, **fields: Any) -> dict[str, Any]:
        nonlocal t
        span_id = root_span if parent is None else _hex(rng, 16)
        t0, t = t, t + duration
        row = {"id": _uuid(rng), "span_id": span_id, "root_span_id": root_id,
               "span_parents": [parent] if parent else None, "created": format_ts(int(t0 * 1e6)),
               "span_attributes": {"name": name, "type": kind},
               "metrics": {"start": round(t0, 6), "end": round(t, 6)}, **fields}
        spans.append(row)
        return row

    root = span("answer_customer", "task", None, 0.0, input={"question": question, "user_id": user},
                metadata={"user_id": user, "channel": rng.choice(["web", "email", "app"]), "model": model,
                          "session": {"locale": rng.choice(["en-GB", "de-DE", "fr-FR"]), "n": n}},
                tags=rng.sample(["production", "beta", "vip", "mobile", "escalated"], rng.randrange(0, 3)))
    tools = rng.sample(_TOOLS, rng.randrange(0, 3))
    for tool in tools:
        span(tool, "tool", root_span, rng.uniform(0.05, 0.4), input={"order_id": n, "tool": tool},
             output={"status": "ok", "order": {"id": n, "state": rng.choice(["shipped", "packed", "late"])}})
    for i in range(rng.randrange(1, 3)):
        prompt, completion = rng.randrange(200, 2400), rng.randrange(20, 400)
        span(f"chat_completion_{i}", "llm", root_span, rng.uniform(0.4, 3.0),
             input=[{"role": "system", "content": "You are a helpful, concise support agent for an online shop."},
                    {"role": "user", "content": question}],
             output=[{"role": "assistant", "content": answer}],
             metadata={"model": model, "temperature": rng.choice([0, 0.2, 0.7])},
             metrics_extra={"prompt_tokens": prompt, "completion_tokens": completion,
                            "total_tokens": prompt + completion,
                            "estimated_cost": round((prompt * 0.15 + completion * 0.6) / 1e6, 8)})
    error = rng.random() < 0.04
    span("helpfulness", "score", root_span, rng.uniform(0.2, 0.8), input={"answer": answer},
         scores={"helpfulness": round(rng.random(), 3)}, span_attributes_extra={"purpose": "scorer"})
    root["output"] = None if error else {"answer": answer}
    root["error"] = "upstream timeout calling the order service" if error else None
    root["scores"] = {"helpfulness": spans[-1]["scores"]["helpfulness"], "resolved": float(rng.random() > 0.3)}
    root["metrics"]["end"] = round(t, 6)
    for row in spans:
        row["metrics"].update(row.pop("metrics_extra", {}))
        row["span_attributes"].update(row.pop("span_attributes_extra", {}))
    return spans


def seed_demo(store: Store, *, days: int = 14, seed: int = 7, traces_per_day: int = 24,
              now: float | None = None) -> dict[str, Any]:
    """Two projects of logs over `days` days up to now, experiments and datasets with updates."""
    rng = random.Random(seed)
    now = time.time() if now is None else now
    first_day = (int(now) // 86400 - (days - 1)) * 86400
    plan = _Plan()
    summary: dict[str, Any] = {"projects": []}
    for p_index, name in enumerate(DEMO_PROJECTS):
        project = store.create_object("project", name, fields={"id": _uuid(rng)},
                                      created=format_ts(int((first_day - 86400) * 1e6)))
        pid = project["id"]
        summary["projects"].append(pid)
        n = 1000 * (p_index + 1)
        for day in range(days):
            for _ in range(traces_per_day):
                start = first_day + day * 86400 + rng.uniform(0, 86400)
                if start > now - 120:
                    continue
                n += 1
                spans = _trace(rng, start, n)
                plan.add(start + 1, [("project_logs", pid, s) for s in spans])
                root = spans[0]
                if rng.random() < 0.3:  # user feedback arrives later, merged into the root
                    plan.add(start + rng.uniform(300, 7200), [("project_logs", pid, {
                        "id": root["id"], "_is_merge": True,
                        "scores": {"user_feedback": float(rng.random() > 0.4)},
                        "tags": ["feedback"], "metadata": {"feedback_source": "thumbs"}})])
                if rng.random() < 0.03 and len(spans) > 2:  # a few spans deleted after the fact
                    plan.add(start + rng.uniform(3600, 20000), [("project_logs", pid, {
                        "id": spans[1]["id"], "_object_delete": True})])
        _seed_datasets(store, plan, rng, pid, first_day)
        _seed_experiments(store, plan, rng, pid, first_day, days)
    plan.apply(store, now)
    return summary


def _seed_datasets(store: Store, plan: _Plan, rng: random.Random, pid: str, first_day: float) -> None:
    for d_index, name in enumerate(("golden-questions", "regression-cases")):
        dataset = store.create_object("dataset", name, pid, {"id": _uuid(rng), "description": f"{name} for evals"},
                                      created=format_ts(int((first_day + d_index * 3600) * 1e6)))
        records = []
        for i in range(20 + 10 * d_index):
            question = rng.choice(_QUESTIONS).format(n=i)
            records.append({"id": _uuid(rng), "input": {"question": question},
                            "expected": {"answer": rng.choice(_ANSWERS).format(n=i)},
                            "metadata": {"difficulty": rng.choice(["easy", "hard"])}, "tags": ["seed"]})
        at = first_day + 7200 + d_index * 60
        plan.add(at, [("dataset", dataset["id"], r) for r in records])
        plan.add(at + 86400 * 2, [("dataset", dataset["id"], {
            "id": r["id"], "_is_merge": True, "metadata": {"reviewed": True}}) for r in records[:5]])
        plan.add(at + 86400 * 3, [("dataset", dataset["id"], {"id": records[-1]["id"], "_object_delete": True})])


def _seed_experiments(store: Store, plan: _Plan, rng: random.Random, pid: str, first_day: float,
                      days: int) -> None:
    previous = None
    for e_index, model in enumerate(_MODELS):
        day = first_day + 86400 * min(days - 1, 2 + e_index * 3)
        experiment = store.create_object("experiment", f"{model}-baseline-{e_index + 1}", pid, {
            "id": _uuid(rng), "description": f"Support answers with {model}",
            "base_exp_id": previous, "metadata": {"model": model},
            "repo_info": {"commit": _hex(rng, 40), "branch": "main", "dirty": False}},
            created=format_ts(int(day * 1e6)))
        previous = experiment["id"]
        events = []
        for i in range(12):
            for row in _trace(rng, day + 60 + i * 30, i):
                if row["span_parents"] is None:
                    row["span_attributes"]["type"] = "eval"
                    row["expected"] = {"answer": rng.choice(_ANSWERS).format(n=i)}
                events.append(("experiment", experiment["id"], row))
        plan.add(day + 60, events)
        roots = [e for e in events if e[2]["span_parents"] is None]
        plan.add(day + 3600, [("experiment", experiment["id"], {
            "id": e[2]["id"], "_is_merge": True, "scores": {"human_review": round(rng.random(), 2)}})
            for e in roots[:4]])


# -- bulk data for benchmarks ------------------------------------------------------------------
BULK_PROJECT = "bulk-load"
_SPANS_PER_TRACE = 5


def seed_bulk(store: Store, *, spans: int, days: int = 7, project: str = BULK_PROJECT,
              seed: int = 11, now: float | None = None) -> str:
    """`spans` rows of realistic ~1.5 KB spans spread evenly over `days` days up to now."""
    rng = random.Random(seed)
    now = time.time() if now is None else now
    pid = store.create_object("project", project, fields={"id": _uuid(rng)})["id"]
    store.bulk_insert(object_key("project_logs", pid), _bulk_rows(rng, pid, store.org_id, spans, days, now))
    return pid


def _template(fields: dict[str, Any]) -> str:
    """A span serialized once with sorted keys; `%(name)s` marks where each row's values go."""
    text = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS).decode().replace("%", "%%")
    for name in _VARIABLE:  # a whole value gets JSON from the row; inside a string, plain text
        spec = ".3f" if name in ("start", "end") else "s"
        text = text.replace(f'"@{name}@"', f"%({name}){spec}").replace(f"@{name}@", f"%({name}){spec}")
    return text


_VARIABLE = ("pk", "xact", "created", "id", "n", "day", "is_root", "model", "user", "start", "end",
             "prompt", "completion", "total", "root_span_id", "scores", "span_id", "span_parents", "tags")
_KINDS = ("task", "llm", "tool", "llm", "score")


def _bulk_templates(pid: str, org_id: str) -> list[str]:
    system = "You are a helpful, concise support agent for an online shop. " * 3
    templates = []
    for position, kind in enumerate(_KINDS):
        templates.append(_template({
            "_async_scoring_state": None, "_pagination_key": "@pk@", "_xact_id": "@xact@",
            "audit_data": [{"_xact_id": "@xact@", "audit_data": {"action": "upsert"}, "metadata": {},
                            "source": "api"}],
            "classifications": None, "comments": None, "context": None, "created": "@created@",
            "error": None, "expected": None, "facets": None, "id": "@id@",
            "input": [{"role": "system", "content": system},
                      {"role": "user", "content": "Where is my order @n@? It was due on day @day@."}],
            "is_root": "@is_root@", "log_id": "g",
            "metadata": {"model": "@model@", "user_id": "@user@", "channel": "web"},
            "metrics": {"start": "@start@", "end": "@end@", "prompt_tokens": "@prompt@",
                        "completion_tokens": "@completion@", "total_tokens": "@total@"},
            "org_id": org_id, "origin": None,
            "output": {"answer": "Your order @n@ left our warehouse and arrives within two working days."},
            "project_id": pid, "root_span_id": "@root_span_id@", "scores": "@scores@",
            "span_attributes": {"name": f"{kind}_{position}", "type": kind},
            "span_id": "@span_id@", "span_parents": "@span_parents@", "tags": "@tags@",
        }))
    return templates


def _bulk_rows(rng: random.Random, pid: str, org_id: str, spans: int, days: int,
               now: float) -> Iterator[tuple[str, str, str, int, str, int, bytes]]:
    templates = _bulk_templates(pid, org_id)
    start = now - days * 86400
    step = (now - 60 - start) / max(spans, 1)
    seq = MAX_ROWS_PER_XACT
    xact = 0
    root_span = root_id = ""
    base_bits = rng.getrandbits(64)
    prefix = "%08x-%04x-4" % (base_bits >> 32, (base_bits >> 16) & 0xFFFF)
    for i in range(spans):
        t = start + i * step
        if seq >= 1000:  # one write (one _xact_id) per thousand rows, as a steady logger would
            xact = max(xact + 1, (0x0DE1 << 48) | (int(t) << 16))
            seq = 0
        position = i % _SPANS_PER_TRACE
        span_id = "%016x" % ((base_bits + i) & 0xFFFFFFFFFFFFFFFF)
        if position == 0:
            root_span, root_id = span_id, "%016x%016x" % (base_bits, i)
        micros = int(t * 1e6)
        row_id = "%s%03x-8%03x-%012x" % (prefix, (i >> 60) & 0xFFF, (i >> 48) & 0xFFF, i & 0xFFFFFFFFFFFF)
        xact_text = str(xact)
        pk = pagination_key(xact, seq)
        seq += 1
        scores = ('{"helpfulness":%s,"resolved":%s}' % ((i % 100) / 100, float(i % 3 > 0))
                  if position in (0, 4) else "null")
        data = templates[position] % {
            "pk": f'"{pk}"', "xact": f'"{xact_text}"', "created": f'"{format_ts(micros)}"', "id": f'"{row_id}"',
            "n": i, "day": i % 28 + 1, "is_root": "true" if position == 0 else "false",
            "model": f'"{_MODELS[i % 3]}"', "user": f'"user-{i % 997}"', "start": t,
            "end": t + 0.5, "prompt": 200 + i % 700, "completion": 20 + i % 300,
            "total": 220 + i % 1000, "root_span_id": f'"{root_id}"', "scores": scores, "span_id": f'"{span_id}"',
            "span_parents": "null" if position == 0 else f'["{root_span}"]',
            "tags": '["bulk"]' if position == 0 else "null",
        }
        yield (row_id, xact_text, pk, micros, root_id, int(position == 0), data.encode())
