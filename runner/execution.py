"""Runs one claimed cycle in this process: loads the agent, keeps the lease alive, records the end.

Used alike by django-q2 tasks and by `manage.py runagent --once`, so a cycle behaves the same
wherever it runs. The agent's exceptions fail the cycle; they never escape to stop the runner.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import traceback as traceback_module
from functools import partial

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import InterfaceError, OperationalError, close_old_connections, connection
from django.utils import timezone
from django_q.exceptions import TimeoutException

from runner import cluster, logs, registry, shutdown
from runner.budget_usage import allowance_for
from runner.conf import conf
from runner.errors import AgentLoadError, CycleCancelled, CycleStop, LeaseLost
from runner.models import CycleRun, RunStatus
from runner.protocol import CycleContext
from runner.services import budgets, cycles, run_log
from runner.types import Claim, Outcome

logger = logging.getLogger(__name__)


def worker_name():
    return f"{socket.gethostname()}:{os.getpid()}"


class RunLog(logging.LoggerAdapter):
    """A logger whose lines are kept (capped) on the run, and also sent to normal logging.

    The heartbeat thread reads the kept lines while the cycle appends to them (the live tail)."""

    def __init__(self, run_id, agent_slug, cap):
        super().__init__(logging.getLogger(f"runner.cycle.{agent_slug}"), {"run_id": run_id})
        self.lines: list[str] = []
        self.cap = cap
        self.dropped = 0
        self._lock = threading.Lock()

    def process(self, msg, kwargs):
        return f"[run {self.extra['run_id']}] {msg}", kwargs

    def log(self, level, msg, *args, **kwargs):
        text = str(msg) % args if args else str(msg)
        with self._lock:
            if len(self.lines) < self.cap:
                stamp = timezone.now().strftime("%H:%M:%S.%f")[:-3]
                self.lines.append(f"{stamp} {logging.getLevelName(level)} {text}")
            else:
                self.dropped += 1
        super().log(level, msg, *args, **kwargs)

    def kept_so_far(self) -> list[str]:
        """The kept lines as they are now: what the live tail shows while the cycle runs."""
        with self._lock:
            return list(self.lines)

    def stored_lines(self):
        if self.dropped:
            return [*self.lines, f"... {self.dropped} more lines not kept (cap {self.cap})"]
        return list(self.lines)


class Heartbeat(threading.Thread):
    """Renews the run's lease every lease/3 until stopped, or until the cycle is far past its
    deadline (then the lease is left to expire, so a hung cycle is reaped rather than kept alive).

    Given the cycle's log, it also writes the new lines every RUNNER_LOG_FLUSH_SECONDS (one
    fenced update a batch, none when nothing was logged), so the run's log can be followed live."""

    def __init__(self, run_id, token, deadline, log=None):
        super().__init__(name=f"heartbeat-run-{run_id}", daemon=True)
        self.run_id, self.token, self.deadline = run_id, token, deadline
        self.renew_every = max(conf.RUNNER_LEASE_SECONDS / 3, 0.1)
        self.log, self.flushed = log, 0
        self.interval = self.renew_every
        if log is not None:
            self.interval = min(self.renew_every, max(conf.RUNNER_LOG_FLUSH_SECONDS, 0.1))
        self.stopped = threading.Event()
        self.lost = threading.Event()

    def run(self):
        with logs.bind(run_id=self.run_id):  # a new thread starts with an empty log context
            self._beat()

    def _beat(self):
        renew_at = time.monotonic() + self.renew_every
        try:
            while not self.stopped.wait(self.interval):
                now = timezone.now()
                if (now - self.deadline).total_seconds() > conf.RUNNER_LEASE_SECONDS:
                    return
                renew = time.monotonic() >= renew_at
                lines = self._unflushed_lines()
                if not renew and lines is None:
                    continue  # nothing to write on this tick: no query at all
                try:
                    close_old_connections()
                    held = self._flush(lines)
                    if held and renew:
                        held, _cancel = cycles.cycle_heartbeat(
                            run_id=self.run_id, token=self.token, now=now
                        )
                        renew_at = time.monotonic() + self.renew_every
                except Exception:  # a dropped connection must not kill the heartbeat
                    logger.exception("heartbeat for run %s failed; retrying", self.run_id)
                    connection.close()
                    continue
                if not held:
                    self.lost.set()
                    return
        finally:
            connection.close()

    def _unflushed_lines(self):
        """The kept lines when some are not written yet, else None."""
        if self.log is None:
            return None
        lines = self.log.kept_so_far()
        return lines if len(lines) > self.flushed else None

    def _flush(self, lines) -> bool:
        if lines is None:
            return True
        held = run_log.cycle_flush_log(run_id=self.run_id, token=self.token, lines=lines)
        if held:
            self.flushed = len(lines)
        return held

    def stop(self):
        self.stopped.set()
        self.join(timeout=5)


def run_queued(run_id, *, task_id="") -> CycleRun:
    """Claim a queued run and execute it here: the one "claim, then execute" of every queued run
    (cluster task, CLI, the web process's fallback). Raises ClaimRefused (BudgetExhausted when
    a budget of the agent is spent)."""
    budgets.budget_gate(run_id=run_id)
    claim = cycles.cycle_claim_queued(run_id=run_id, worker=worker_name(), task_id=task_id)
    return execute_claim(claim)


def run_scheduled(agent_id, *, slot=None, task_id="") -> CycleRun | None:
    """Claim the agent's due slot and execute it here; None when nothing was due (a duplicate
    delivery). Raises ClaimRefused when the slot was recorded as skipped.

    The budget gate comes first, as for queued runs; the claim's own read of the agent tells
    whether it has budgets at all, so an agent without any pays no extra statement for it."""
    claim_slot = partial(
        cycles.cycle_claim_scheduled,
        agent_id=agent_id,
        worker=worker_name(),
        task_id=task_id,
        slot=slot,
    )
    claim = claim_slot(defer_budgets=True)
    if claim is cycles.BUDGET_GATE_FIRST:
        budgets.budget_gate(agent_id=agent_id, slot=slot)
        claim = claim_slot()
    return execute_claim(claim) if claim is not None else None


def execute_claim(claim: Claim) -> CycleRun:
    """Run a claimed cycle to its end and record the outcome (fenced by the claim's token)."""
    with logs.bind(agent=claim.run.agent.slug, run_id=claim.run.pk):
        return _execute_claim(claim)


def _execute_claim(claim):
    run = claim.run
    agent = run.agent
    log = RunLog(run.pk, agent.slug, conf.RUNNER_RUN_LOG_LINES)
    # Inside a caller's open transaction nobody else could read the lines before it commits, and
    # the heartbeat's own connection would only wait on that transaction's lock: no live tail then.
    live_log = None if connection.in_atomic_block else log
    heartbeat = Heartbeat(run.pk, claim.token, run.deadline_at, log=live_log)
    heartbeat.start()
    try:
        outcome = _run_agent(run, claim.token, log, heartbeat)
    except TimeoutException:
        # django-q2's hard timeout (SIGALRM, a SystemExit) ended a cycle that ignored its own
        # deadline: record it now rather than when the lease runs out, then let django-q2
        # replace this worker process.
        heartbeat.stop()
        log.error("django-q2 stopped the cycle at its hard timeout")
        hard_stop = Outcome(
            status=RunStatus.TIMED_OUT,
            error_type="HardTimeout",
            error_message="The cycle ignored its deadline and was stopped by django-q2's timeout",
            log_lines=log.stored_lines(),
        )
        _finish(run.pk, claim.token, hard_stop, run=run)
        raise
    finally:
        heartbeat.stop()
    outcome.log_lines = log.stored_lines()
    cluster.release_worker_early()  # only the result is left to write: take the next task now
    written = _finish(run.pk, claim.token, outcome, run=run)
    if not written:
        logger.warning(
            "run %s lost its lease; its result (%s) was discarded", run.pk, outcome.status
        )
        run.refresh_from_db()  # what the run became instead (reaped, cancelled)
    return run


def _finish(run_id, token, outcome, run=None):
    """Record the outcome; one retry on a fresh connection if the database dropped us mid-cycle."""
    try:
        return cycles.cycle_finish(run_id=run_id, token=token, outcome=outcome, run=run)
    except Exception:
        logger.exception("recording run %s failed; retrying on a new connection", run_id)
        connection.close()
        return cycles.cycle_finish(run_id=run_id, token=token, outcome=outcome, run=run)


def _run_agent(run, token, log, heartbeat):
    agent = run.agent
    try:
        agent_class = registry.get_agent_class(agent.kind)
        parameters = registry.validate_parameters(
            agent.kind, {**agent.parameters, **run.parameter_overrides}
        )
        instance = agent_class()
    except (AgentLoadError, ValidationError, TypeError) as exc:
        log.error("agent could not be loaded: %s", exc)
        return Outcome(
            status=RunStatus.FAILED,
            error_type=type(exc).__name__
            if not isinstance(exc, AgentLoadError)
            else "AgentLoadError",
            error_message=str(exc),
            traceback=traceback_module.format_exc(),
            trip=True,
        )

    def checkpoint():
        if heartbeat.lost.is_set():
            raise LeaseLost("This worker no longer holds the run's lease")
        if shutdown.requested():
            raise CycleCancelled(shutdown.CANCELLED_MESSAGE)
        try:
            cycles.cycle_checkpoint(run_id=run.pk, token=token)
        except (OperationalError, InterfaceError):
            # The database dropped this connection (restart, failover, pg_terminate_backend):
            # reconnect once rather than fail a cycle that is otherwise fine.
            logger.warning("checkpoint of run %s lost its connection; reconnecting", run.pk)
            connection.close()
            cycles.cycle_checkpoint(run_id=run.pk, token=token)

    context = CycleContext(
        agent_slug=agent.slug,
        run_id=run.pk,
        parameters=parameters,
        trading_mode=run.trading_mode,
        deadline=run.deadline_at,
        logger=log,
        checkpoint=checkpoint,
        now=timezone.now,
        extra={"run": run},
        budget=allowance_for(agent),
    )
    log.info("cycle started (agent %s, kind %s, mode %s)", agent.slug, agent.kind, run.trading_mode)
    try:
        summary = instance.run(context)
        summary = json.loads(
            json.dumps(summary if summary is not None else {}, cls=DjangoJSONEncoder)
        )
        if not isinstance(summary, dict):
            summary = {"result": summary}
    except CycleStop as exc:
        log.warning("cycle stopped: %s", exc)
        return Outcome(status=exc.status, error_type=type(exc).__name__, error_message=str(exc))
    except Exception as exc:
        log.error("cycle failed: %s: %s", type(exc).__name__, exc)
        return Outcome(
            status=RunStatus.FAILED,
            error_type=type(exc).__name__,
            error_message=str(exc),
            traceback=traceback_module.format_exc(),
        )
    log.info("cycle succeeded")
    return Outcome(status=RunStatus.SUCCEEDED, summary=summary)
