"""Errors from Braintrust, each saying what to fix. None of them ever carries the API key."""

from __future__ import annotations


class BraintrustError(Exception):
    """Base class: something about Braintrust or the way we talk to it."""


class AuthError(BraintrustError):
    """401/403: the key is missing, wrong, or not allowed to read this."""


class QueryRejected(BraintrustError):
    """400: Braintrust refused a query; carries its message and the query."""

    def __init__(self, message: str, query: str, status: int = 400):
        super().__init__(f"Braintrust rejected the query ({status}): {message}\nquery: {query}")
        self.server_message = message
        self.query = query
        self.status = status


class NotFoundError(BraintrustError):
    """404 or an unknown name."""


class RetriesExhausted(BraintrustError):
    """The service kept failing (429/5xx/timeouts/resets) through every retry."""


class ConfigError(BraintrustError):
    """The configuration cannot work as given (the message names the setting)."""
