"""Waiting for a queued cycle to finish, for the seed's synchronous POST /api/agent/run-once.

The seed ran the cycle inside the request. Here the cycle is queued through the service like
any other manual run, so a qcluster normally picks it up and this only polls the run row. When
no worker has claimed it after a short grace (no cluster running, or all workers busy), the web
process claims it itself and runs it in a background thread, exactly as `runagent --once` does;
whoever claims first wins and the other is refused by the claim, so the cycle runs once.

The wait is bounded: after `wait_seconds` the caller gets the run as it is (still queued or
running) and says so; a cycle already started in this process keeps going in its thread and
records its outcome as usual (see /api/runs/{id}/).
"""

import logging
import threading
import time

from django.db import close_old_connections, connection

from runner import execution
from runner.errors import ClaimRefused
from runner.models import CycleRun, RunStatus

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.05
PENDING_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


def _run_here(run_id):
    """Claim and run a queued cycle in this process; a refused claim means a worker was faster."""
    close_old_connections()
    try:
        execution.run_queued(run_id)
    except ClaimRefused as exc:
        logger.info("run %s not run in the web process: %s", run_id, exc.message)
    except Exception:
        logger.exception("run %s could not be run in the web process", run_id)
    finally:
        connection.close()


def wait_for_run(run_id, *, wait_seconds, grace_seconds) -> CycleRun:
    """Poll the run until it leaves queued/running or the wait ends; returns the run as last seen."""
    started = time.monotonic()
    helper = None
    while True:
        run = CycleRun.objects.select_related("agent").get(pk=run_id)
        elapsed = time.monotonic() - started
        if run.status not in PENDING_STATUSES or elapsed >= wait_seconds:
            return run
        if helper is None and run.status == RunStatus.QUEUED and elapsed >= grace_seconds:
            helper = threading.Thread(
                target=_run_here, args=(run_id,), name=f"run-once-{run_id}", daemon=True
            )
            helper.start()
        time.sleep(POLL_SECONDS)
