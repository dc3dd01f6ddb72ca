"""Values the cycle lifecycle hands between the services and the code that runs a cycle."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Claim:
    """A run this worker may execute, and the fencing token every write of its result carries."""

    run: object  # runner.models.CycleRun
    token: int


@dataclass
class Outcome:
    """How a cycle ended, as the worker (or the reaper) saw it."""

    status: str
    summary: dict | None = None
    error_type: str = ""
    error_message: str = ""
    traceback: str = ""
    log_lines: list | None = None
    trip: bool = False  # the agent could not be loaded: trip at once, whatever the failure count
