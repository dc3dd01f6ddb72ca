"""Writing a running cycle's log lines while it runs, so operators can follow it (the live tail).

The worker's heartbeat thread hands over the lines kept so far in batches (every
RUNNER_LOG_FLUSH_SECONDS, only when there are new ones): one UPDATE a batch, never one a line. The
write is fenced like every write of a run, so a worker that lost its lease cannot touch the run
again. Lines are only ever appended (the list written is the one kept so far, capped by
RUNNER_RUN_LOG_LINES), so a reader's cursor, the line number, stays valid; the finish writes the
same list, plus one closing line when lines were dropped.
"""

from __future__ import annotations

from runner.models import CycleRun, RunStatus


def cycle_flush_log(*, run_id, token, lines) -> bool:
    """Store the lines kept so far on the running run; False when this worker no longer holds it."""
    held = CycleRun.objects.filter(pk=run_id, fencing_token=token, status=RunStatus.RUNNING)
    return held.update(log_lines=list(lines)) == 1
