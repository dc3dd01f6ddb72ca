"""Log context: the agent, run id and request id of whatever code is logging, on every line.

Context variables (not thread locals) carry them, so they follow the code that set them: the
request-id middleware binds `request_id` for a request, `runner.execution` binds `agent` and
`run_id` for a cycle. `ContextFilter` copies them onto each record; `JsonFormatter` writes one JSON
object per line when `LOG_FORMAT=json`.
"""

from __future__ import annotations

import contextvars
import json
import logging
from contextlib import contextmanager
from datetime import UTC, datetime

CONTEXT_FIELDS = ("agent", "run_id", "request_id")
_context = {name: contextvars.ContextVar(f"log_{name}", default=None) for name in CONTEXT_FIELDS}


@contextmanager
def bind(**values):
    """Set some of agent / run_id / request_id for the code inside the block, then restore them."""
    unknown = set(values) - set(CONTEXT_FIELDS)
    if unknown:
        raise TypeError(f"unknown log context fields: {sorted(unknown)}")
    tokens = [(name, _context[name].set(value)) for name, value in values.items()]
    try:
        yield
    finally:
        for name, token in reversed(tokens):
            _context[name].reset(token)


def current() -> dict:
    """The bound context values (None where unknown)."""
    return {name: var.get() for name, var in _context.items()}


class ContextFilter(logging.Filter):
    """Adds agent, run_id and request_id to every record; an explicit `extra=` value wins."""

    def filter(self, record):
        for name, value in current().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


# Attributes every LogRecord has; anything else on a record came from `extra=` and is kept.
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class PlainFormatter(logging.Formatter):
    """Human-readable, still one line per event: newlines (messages, tracebacks) are escaped."""

    def format(self, record):
        return super().format(record).replace("\r", "\\r").replace("\n", "\\n")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context, extras and any traceback."""

    def format(self, record):
        entry = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            entry[name] = getattr(record, name, None)
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)
