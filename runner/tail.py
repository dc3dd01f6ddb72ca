"""Reading a run's log after a cursor: the live tail behind the API, the admin pages and the CLI.

Lines are numbered from 1 in the order they were logged; the cursor is the number of the last line
a reader has. A running cycle's worker appends lines in batches (runner.services.run_log) and its
finish writes the same list in the same update as the final status, so a read that sees the run
ended also sees its last line: polling with the cursor returns every line exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from runner.models import CycleRun, RunStatus

STILL_GOING = (RunStatus.QUEUED, RunStatus.RUNNING)


@dataclass(frozen=True)
class LogPage:
    """The lines after `after`, and where the run stands."""

    run_id: int
    agent: str
    status: str
    after: int
    lines: list[tuple[int, str]]

    @property
    def ended(self) -> bool:
        return self.status not in STILL_GOING

    @property
    def next(self) -> int:
        """The cursor to ask with next time: the number of the last line returned."""
        return self.lines[-1][0] if self.lines else self.after

    @property
    def version(self) -> str:
        """Changes whenever the answer to the same question would (an HTTP ETag)."""
        return f"run{self.run_id}-{self.status}-after{self.after}-next{self.next}"

    def as_dict(self) -> dict:
        return {
            "run": self.run_id,
            "agent": self.agent,
            "status": self.status,
            "ended": self.ended,
            "after": self.after,
            "next": self.next,
            "lines": [{"number": number, "text": text} for number, text in self.lines],
        }


def log_after(run_id, after=0) -> LogPage | None:
    """The run's lines numbered after `after` (one query); None when there is no such run."""
    row = (
        CycleRun.objects.filter(pk=run_id)
        .values("pk", "agent__slug", "status", "log_lines")
        .first()
    )
    if row is None:
        return None
    lines = row["log_lines"] if isinstance(row["log_lines"], list) else []
    numbered = [(number, str(text)) for number, text in enumerate(lines[after:], start=after + 1)]
    return LogPage(row["pk"], row["agent__slug"], row["status"], after, numbered)


def follow(
    run_id, *, after=0, poll_seconds=1.0, sleep: Callable[[float], None] = time.sleep
) -> Iterator[LogPage]:
    """Pages of new lines, one a poll, until the run has ended (the last page says so)."""
    while True:
        page = log_after(run_id, after)
        if page is None:
            return
        yield page
        if page.ended:
            return
        after = page.next
        sleep(poll_seconds)
