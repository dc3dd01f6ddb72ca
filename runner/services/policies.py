"""Run policies that write: retries with backoff, what starts when a run ends, and backfills.

The decisions themselves are pure functions in runner.policy_rules; this module gathers the facts
and writes the outcome, always inside the caller's transaction with the agent row locked.

- A retry is a new queued run of the same slot (`attempt` + 1, `retry_of` the run it retries),
  sent by a one-off django-q2 schedule row (`runner:retry:<run id>`) at the end of its backoff.
  The dispatcher sends due retry rows at once; django-q2's own scheduler is the fallback.
- When a run ends, the agent's next piece of waiting work starts at once: a slot that waited for
  it (buffer_one, cancel_previous, a catch-up backlog, a start right after a stop), else the
  oldest waiting retry or backfill run. One at a time, so runs never overlap.
"""

from __future__ import annotations

import ast

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from runner import policy_rules, scheduling
from runner.conf import conf
from runner.models import AgentState, CycleRun, RunStatus, RunTrigger

RETRY_PREFIX = "runner:retry:"
# Runs queued by a policy: they wait their turn instead of being skipped when a run is in flight.
POLICY_RUN = Q(trigger=RunTrigger.BACKFILL) | Q(attempt__gt=0)


# --- retries ------------------------------------------------------------------------------------


def schedule_retry(agent, run, status, *, now) -> CycleRun | None:
    """Queue the next attempt of a scheduled or backfill run that ended with a retryable outcome.
    Returns the retry, or None when the run does not retry (then the breaker counts the slot)."""
    if run.trigger not in (RunTrigger.SCHEDULE, RunTrigger.BACKFILL) or run.slot is None:
        return None
    if run.trigger == RunTrigger.SCHEDULE and agent.state != AgentState.RUNNING:
        return None
    if not policy_rules.should_retry(
        status=status,
        attempt=run.attempt,
        attempts=agent.retry_attempts,
        retry_on=agent.retry_on,
    ):
        return None
    attempt = run.attempt + 1
    delay = policy_rules.retry_delay(
        base_seconds=agent.retry_backoff_seconds,
        attempt=attempt,
        key=f"{agent.pk}:{run.slot.isoformat()}:{attempt}",
        max_seconds=conf.RUNNER_RETRY_MAX_DELAY_SECONDS,
    )
    try:
        with transaction.atomic():
            retry = CycleRun.objects.create(
                agent=agent,
                trigger=run.trigger,
                slot=run.slot,
                attempt=attempt,
                retry_of_id=run.pk,
                status=RunStatus.QUEUED,
                queued_at=now,
                not_before=now + delay,
                trading_mode=agent.effective_trading_mode,
                policy_note=(
                    f"retry {attempt} of {agent.retry_attempts} of run {run.pk} ({status}), "
                    f"after a backoff of {delay.total_seconds():.1f} s"
                ),
            )
    except IntegrityError:
        return None  # this attempt of the slot exists already (a second settle of the run)
    Schedule.objects.create(
        name=f"{RETRY_PREFIX}{retry.pk}",
        func=scheduling.QUEUED_TASK,
        args=str(retry.pk),
        kwargs=repr({"q_options": scheduling.task_options(agent.timeout_seconds)}),
        schedule_type=Schedule.ONCE,
        repeats=-1,
        next_run=retry.not_before,
    )
    return retry


def dispatch_due_retries(*, now=None) -> list[int]:
    """Send every retry whose backoff is over (the dispatcher, each pass). A row is taken by
    deleting it, so several dispatchers and django-q2's scheduler send each retry once."""
    now = now or timezone.now()
    due = Schedule.objects.filter(name__startswith=RETRY_PREFIX, next_run__lte=now)
    sent = []
    for pk, args, kwargs in list(due.values_list("pk", "args", "kwargs")):
        with transaction.atomic():
            if Schedule.objects.filter(pk=pk).delete()[0]:
                options = ast.literal_eval(kwargs).get("q_options", {})
                task_id = async_task(scheduling.QUEUED_TASK, int(args), q_options=options)
                CycleRun.objects.filter(pk=int(args), status=RunStatus.QUEUED).update(
                    task_id=task_id or ""
                )
                sent.append(int(args))
    return sent


# --- claiming a queued run ------------------------------------------------------------------------


def queued_verdict(agent, run, *, running: bool) -> tuple[str, str]:
    """("run" | "wait" | "skip", why) for a queued run a worker is about to claim."""
    if run.attempt and run.trigger == RunTrigger.SCHEDULE and agent.state != AgentState.RUNNING:
        return "skip", f"Retry not run: agent is {agent.state}"
    if not running:
        return "run", ""
    if run.attempt or run.trigger == RunTrigger.BACKFILL:
        return "wait", "Waits for the cycle in flight; starts when it ends"
    return "skip", "Another cycle of this agent is in flight"


def run_values(agent, run, config: dict) -> dict:
    """What a queued run records when it starts: run-once overrides go into its snapshot."""
    if not run.parameter_overrides:
        return {}
    return {
        "config_snapshot": {
            **config,
            "parameters": {**agent.parameters, **run.parameter_overrides},
            "parameter_overrides": run.parameter_overrides,
        }
    }


# --- when a run ends --------------------------------------------------------------------------------


def after_run(agent, *, now):
    """Start the agent's next waiting piece of work, once the current transaction commits."""
    if CycleRun.objects.filter(agent=agent, status=RunStatus.RUNNING).exists():
        return
    if agent.state == AgentState.RUNNING and agent.next_run is not None and agent.next_run <= now:
        send_slot(agent)
        return
    waiting = (
        CycleRun.objects.filter(POLICY_RUN, agent=agent, status=RunStatus.QUEUED)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .order_by("slot", "id")
        .values_list("pk", flat=True)
        .first()
    )
    if waiting is not None:
        Schedule.objects.filter(name=f"{RETRY_PREFIX}{waiting}").delete()
        scheduling.enqueue_queued_run(waiting, timeout_seconds=agent.timeout_seconds)


def send_slot(agent):
    """Queue the agent's due slot now (it waited for the run that just ended)."""
    slot = scheduling.fire_time(agent, agent.next_run)
    agent_id, options = agent.pk, scheduling.task_options(agent.timeout_seconds)
    transaction.on_commit(
        lambda: async_task(
            scheduling.SCHEDULED_TASK,
            agent_id,
            slot=slot.isoformat(),
            group=scheduling.schedule_name(agent),
            q_options=options,
        )
    )


def waited_note(agent, slot, now) -> str:
    """Why a slot started late, when it waited for the agent's previous run to end (one point
    query on the agent's last start, indexed)."""
    fires = scheduling.fire_time(agent, slot)
    if agent.last_run is None or agent.last_run > fires:
        return ""
    previous = (
        CycleRun.objects.filter(agent=agent, started_at=agent.last_run, finished_at__gt=fires)
        .values_list("pk", "status")
        .first()
    )
    if previous is None:
        return ""
    return (
        f"started after run {previous[0]} ({previous[1]}) ended "
        f"(overlap policy {agent.overlap_policy})"
    )


def drop_waiting(agent, *, now, why):
    """A stop ends every retry and backfill run still waiting: recorded as skipped."""
    waiting = CycleRun.objects.filter(POLICY_RUN, agent=agent, status=RunStatus.QUEUED)
    ids = list(waiting.values_list("pk", flat=True))
    Schedule.objects.filter(name__in=[f"{RETRY_PREFIX}{pk}" for pk in ids]).delete()
    waiting.update(status=RunStatus.SKIPPED, finished_at=now, error_message=why)


def stale_queued_exempt() -> Q:
    """Queued runs the stale-queue reaper leaves alone: policy runs wait their turn or backoff."""
    return POLICY_RUN
