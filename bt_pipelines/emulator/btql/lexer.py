"""Tokens of BTQL and Braintrust SQL text."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from .ast import QueryError

KEYWORDS = frozenset({
    "and", "or", "not", "is", "null", "in", "includes", "like", "ilike", "true", "false", "interval",
    "as", "asc", "desc", "select", "from", "where", "group", "by", "order", "limit",
})

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)
  | (?P<sq>'(?:[^'\\]|\\.|'')*')
  | (?P<dq>"(?:[^"\\]|\\.)*")
  | (?P<bq>`(?:[^`]|``)*`)
  | (?P<word>[A-Za-z_$][A-Za-z0-9_$]*)
  | (?P<op>=>|==|!=|<>|<=|>=|[=<>+\-*/%(),.\[\]:|;])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # num, str, ident, kw, op, end
    value: object
    pos: int

    def is_kw(self, *words: str) -> bool:
        return self.kind == "kw" and self.value in words

    def is_op(self, *ops: str) -> bool:
        return self.kind == "op" and self.value in ops


def _single_quoted(text: str) -> str:
    body = text[1:-1].replace("''", "'")
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def tokenize(text: str, *, double_quotes_are_strings: bool) -> list[Token]:
    """Split text into tokens; in BTQL "..." is a JSON string, in SQL an identifier."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise QueryError(f"unexpected character {text[pos]!r} at position {pos}")
        kind, raw = m.lastgroup, m.group()
        if kind == "num":
            num = float(raw) if any(c in raw for c in ".eE") else int(raw)
            tokens.append(Token("num", num, pos))
        elif kind == "sq":
            tokens.append(Token("str", _single_quoted(raw), pos))
        elif kind == "dq":
            if double_quotes_are_strings:
                tokens.append(Token("str", json.loads(raw), pos))
            else:
                tokens.append(Token("ident", raw[1:-1].replace('""', '"'), pos))
        elif kind == "bq":
            tokens.append(Token("ident", raw[1:-1].replace("``", "`"), pos))
        elif kind == "word":
            low = raw.lower()
            tokens.append(Token("kw", low, pos) if low in KEYWORDS else Token("ident", raw, pos))
        elif kind == "op":
            tokens.append(Token("op", raw, pos))
        pos = m.end()
    tokens.append(Token("end", None, len(text)))
    return tokens
