"""BTQL: parse any of the three query forms into one `Query`."""

from __future__ import annotations

import re
from typing import Any

from .ast import Query, QueryError
from .parse_json import parse_tree
from .parse_text import parse_btql, parse_sql

__all__ = ["Query", "QueryError", "parse_query"]

_SQL_START = re.compile(r"\s*select\s+(?!:)", re.IGNORECASE)


def parse_query(query: Any) -> Query:
    """A SQL string, a BTQL clause string, or the SDK's JSON tree -> a checked `Query`."""
    if isinstance(query, dict):
        parsed = parse_tree(query)
    elif isinstance(query, str):
        if not query.strip():
            raise QueryError("the query is empty")
        parsed = parse_sql(query) if _SQL_START.match(query) else parse_btql(query)
    else:
        raise QueryError('"query" must be a SQL/BTQL string or a JSON query object')
    parsed.check()
    return parsed
