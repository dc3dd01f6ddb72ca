"""The cycle lifecycle: claim, heartbeat, checkpoint, finish (at most one running cycle per agent).

  claim      lock the agent row (skip_locked), reap its expired leases, refuse if a run is
             running, bump the agent's fencing token, mark the run `running` with a lease;
  heartbeat  renew the lease (filtered on the fencing token);
  checkpoint raise if stop was requested, the deadline passed or the lease was lost;
  finish     write the outcome and counters, filtered on the fencing token, so a worker that lost
             its lease (killed, paused, partitioned) can never overwrite what happened since.
The partial unique index on running runs and unique (agent, slot) back this on every database.
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from runner import policy_rules, schedules, scheduling
from runner.compiled_sql import update_row
from runner.conf import conf
from runner.errors import ClaimRefused, CycleCancelled, CycleDeadlineExceeded, LeaseLost
from runner.models import Agent, AgentState, CycleRun, RunStatus, RunTrigger
from runner.services import agent_locks, policies
from runner.services.configuration import config_values
from runner.services.leases import lease_duration, reap_agent
from runner.services.outcomes import settle_run
from runner.types import Claim, Outcome
from runner.versions import current_version_id

# How long a claim retries an agent row that another transaction holds before giving up.
CLAIM_LOCK_ATTEMPTS = 40
CLAIM_LOCK_PAUSE_SECONDS = 0.05


def _lock_agent_for_claim(agent_id, read=None):
    """Lock the agent row without queueing behind other claims; retry briefly if it is held.
    `read` may carry annotations read in the same statement (the scheduled claim's facts)."""
    read = agent_locks.QUEUED_CLAIM if read is None else read
    for _ in range(CLAIM_LOCK_ATTEMPTS):
        agent = read.fetch(agent_id)
        if agent is not None:
            return agent
        if not Agent.objects.filter(pk=agent_id).exists():
            raise ClaimRefused(f"Agent {agent_id} does not exist")
        time.sleep(CLAIM_LOCK_PAUSE_SECONDS)
    raise ClaimRefused("The agent is locked by another claim")


def _begin_run(agent, run_values, *, now, worker, task_id, existing_run_id=None) -> Claim:
    """Mark a run `running` with a fresh fencing token and lease."""
    Agent.objects.filter(pk=agent.pk).update(
        fencing_token=F("fencing_token") + 1, last_run=now, updated_at=now
    )
    token = Agent.objects.values_list("fencing_token", flat=True).get(pk=agent.pk)
    values = {
        "status": RunStatus.RUNNING,
        "started_at": now,
        "heartbeat_at": now,
        "lease_expires_at": now + lease_duration(),
        "deadline_at": now + timedelta(seconds=agent.timeout_seconds),
        "fencing_token": token,
        "worker": worker,
        "trading_mode": agent.effective_trading_mode,
        "config_snapshot": config_values(agent),
        "config_version_id": current_version_id(agent.pk),
        **run_values,
    }
    if task_id:
        values["task_id"] = task_id
    try:
        with transaction.atomic():
            if existing_run_id is not None:
                claimed = CycleRun.objects.filter(
                    pk=existing_run_id, status=RunStatus.QUEUED
                ).update(**values)
                if not claimed:
                    raise ClaimRefused(f"Run {existing_run_id} is no longer queued")
                run = CycleRun.objects.get(pk=existing_run_id)
            else:
                run = CycleRun.objects.create(agent=agent, queued_at=now, **values)
    except IntegrityError as exc:
        raise ClaimRefused("Another cycle of this agent is running or this slot has run") from exc
    return Claim(run=run, token=token)


def _record_skipped_once(agent, *, now, slot, message, missed=0) -> bool:
    """Record a slot that will not run; False when that slot already has its record (a second
    delivery). A savepoint, so a lost race leaves the claim's transaction usable."""
    try:
        with transaction.atomic():
            _record_skipped(agent, now=now, slot=slot, message=message, missed=missed)
    except IntegrityError:
        return False
    return True


def _record_skipped(agent, *, now, slot, message, missed=0):
    CycleRun.objects.create(
        agent=agent,
        trigger=RunTrigger.SCHEDULE,
        slot=slot,
        missed_slots=missed,
        status=RunStatus.SKIPPED,
        queued_at=now,
        finished_at=now,
        error_message=message,
    )


def cycle_claim_queued(*, run_id, worker, task_id="", now=None) -> Claim:
    """Claim a queued (manual or CLI) run. Refused runs are marked `skipped` with the reason."""
    run = (
        CycleRun.objects.filter(pk=run_id)
        .only("agent_id", "status", "trigger", "attempt", "parameter_overrides")
        .first()
    )
    if run is None:
        raise ClaimRefused(f"Run {run_id} does not exist")
    refusal = None
    with transaction.atomic():
        agent = _lock_agent_for_claim(run.agent_id)
        # "now" is read once the lock is held, so this run cannot start before the previous
        # one's recorded finish (the lock may have been waited for).
        now = now or timezone.now()
        reap_agent(agent, now)
        running = CycleRun.objects.filter(agent=agent, status=RunStatus.RUNNING).exists()
        verdict, why = policies.queued_verdict(agent, run, running=running)
        queued = CycleRun.objects.filter(pk=run_id, status=RunStatus.QUEUED)
        if verdict == "skip":
            refusal = ClaimRefused(why, state=agent.state)
            queued.update(status=RunStatus.SKIPPED, finished_at=now, error_message=why)
        elif verdict == "wait":  # a retry or backfill run: the end of the run in flight sends it
            refusal = ClaimRefused(why, state=agent.state)
            queued.update(task_id="")
        else:
            values = policies.run_values(agent, run, config_values(agent))
            claim = _begin_run(
                agent, values, now=now, worker=worker, task_id=task_id, existing_run_id=run_id
            )
    if refusal is not None:
        raise refusal
    return claim


# Returned by cycle_claim_scheduled(defer_budgets=True) for an agent with budgets: nothing was
# written; the caller runs the budget gate (runner.services.budgets) and claims again.
BUDGET_GATE_FIRST = "budget-gate-first"


def cycle_claim_scheduled(
    *, agent_id, worker, task_id="", now=None, slot=None, defer_budgets=False
) -> Claim | None:
    """Claim the agent's due scheduled slot; None when nothing is due (a duplicate delivery).

    `slot` is the slot the task was sent for: a slot older than the agent's `next_run` was
    already run, skipped or folded, so its delivery is a no-op. A due slot for a paused or
    stopped agent is recorded once as a `skipped` run with the reason, so every slot leaves one
    trace. What happens to a due slot of a running agent (run, skipped, held for the run in
    flight, missed slots folded or caught up) is the agent's overlap and catch-up policy
    (runner.policy_rules, applied by `_claim_due_slot`). With `defer_budgets`, an agent with
    budgets gets BUDGET_GATE_FIRST back before anything is written.

    The usual case (no run in flight, the dispatcher already moved the Schedule row) costs one
    locking read, one conditional UPDATE of the agent (next run, fencing token) and the run's
    INSERT: the facts come with the lock, and expired leases are reaped here only when a run is
    still marked running (stale queued runs are the periodic reaper's).
    """
    refusal = None
    try:
        with transaction.atomic():
            agent = _lock_agent_for_claim(agent_id, agent_locks.SCHEDULED_CLAIM)
            if defer_budgets and agent.budgets:
                return BUDGET_GATE_FIRST
            now = now or timezone.now()  # read under the lock, as in cycle_claim_queued
            if agent.running_run_id is not None and reap_agent(agent, now):
                agent.running_run_id = None  # its lease had run out: settled as abandoned
            if agent.state != AgentState.RUNNING:
                refusal = ClaimRefused(f"Agent is {agent.state}", state=agent.state)
                message = f"Scheduled cycle skipped: agent is {agent.state}"
                if not _record_skipped_once(agent, now=now, slot=slot, message=message):
                    return None  # this slot was already recorded: a second delivery
            elif slot is not None and (agent.next_run is None or slot < agent.next_run):
                # That slot was already handled (a second delivery), or a later control request
                # moved the schedule on before any worker took it: the latter leaves its trace once.
                _record_skipped_once(
                    agent,
                    now=now,
                    slot=slot,
                    message="Scheduled cycle skipped: superseded, a later control request "
                    "moved the schedule on before a worker took this slot",
                )
                return None
            elif agent.next_run is None or agent.next_run > now:
                return None
            else:
                claim, refusal = _claim_due_slot(agent, now=now, worker=worker, task_id=task_id)
                if refusal is None:
                    return claim
    except IntegrityError as exc:
        # The run's INSERT met the one-running-run index or unique (agent, slot): the whole claim
        # rolled back (no savepoint needed), as if this delivery had never come.
        raise ClaimRefused("Another cycle of this agent is running or this slot has run") from exc
    raise refusal


def _claim_due_slot(agent, *, now, worker, task_id):
    """Run, skip or hold the agent's due slot as its overlap and catch-up policies say
    (runner.policy_rules). Returns (claim or None, refusal or None)."""
    in_flight = None
    if agent.running_run_id is not None:
        in_flight = (
            CycleRun.objects.filter(agent=agent, status=RunStatus.RUNNING)
            .values_list("pk", "cancel_requested", "started_at")
            .first()
        )
    decision = policy_rules.decide_due_slot(
        schedules.spec_of(agent),
        policy_rules.policy_of(agent),
        due=agent.next_run,
        now=now,
        in_flight=in_flight[0] if in_flight else None,
        in_flight_cancelling=bool(in_flight and in_flight[1]),
        in_flight_started=in_flight[2] if in_flight else None,
        # A stopped cycle winding down (stop, then start at once) or one asked to make room:
        # its end starts the slot (policies.after_run); the schedule row looks again meanwhile.
        backstop=timedelta(seconds=max(conf.RUNNER_LEASE_SECONDS / 3, 1)),
    )
    agent.next_run = decision.next_run
    _keep_schedule_row(agent, not_before=decision.hold_until)
    if decision.action == policy_rules.RUN:
        values = {
            "trigger": RunTrigger.SCHEDULE,
            "slot": decision.slot,
            "missed_slots": decision.missed,
            "policy_note": "; ".join(
                note for note in (_waited_note(agent, decision.slot, now), decision.note) if note
            ),
        }
        return _start_scheduled_run(agent, values, now=now, worker=worker, task_id=task_id), None
    agent.save(update_fields=["next_run", "updated_at"])
    if decision.action == policy_rules.CANCEL_AND_WAIT:
        CycleRun.objects.filter(pk=in_flight[0], status=RunStatus.RUNNING).update(
            cancel_requested=True, policy_note=decision.note
        )
    if decision.action == policy_rules.SKIP:
        _record_skipped_once(
            agent, now=now, slot=decision.slot, message=decision.note, missed=decision.missed
        )
        return None, ClaimRefused(decision.note, state=agent.state)
    return None, None


def _keep_schedule_row(agent, *, not_before):
    """Re-sync the agent's Schedule row only when it does not already fire where it should (the
    dispatcher moves it past the slot it sends, so usually it does)."""
    fires = scheduling.fire_time(agent, agent.next_run)
    wanted = max(fires, not_before) if not_before else fires
    if agent.schedule_next_run != wanted:
        scheduling.sync_schedule(agent, not_before=not_before)


def _waited_note(agent, slot, now) -> str:
    """policies.waited_note, asked only when the previous run ended after this slot fired."""
    ended = agent.previous_finished_at
    if ended is None or ended <= scheduling.fire_time(agent, slot):
        return ""
    return policies.waited_note(agent, slot, now)


def _start_scheduled_run(agent, run_values, *, now, worker, task_id) -> Claim:
    """The claim's two writes: one conditional UPDATE of the agent (next run, last start, the
    fencing token bumped from the value read under the lock, so a concurrent claim on a database
    without row locks finds nothing to update) and the run's INSERT."""
    token = agent.fencing_token + 1
    moved = update_row(
        Agent,
        where={"id": agent.pk, "fencing_token": agent.fencing_token},
        values={
            "next_run": agent.next_run,
            "fencing_token": token,
            "last_run": now,
            "updated_at": now,
        },
    )
    if not moved:
        raise ClaimRefused("Another worker claimed this agent first", state=agent.state)
    agent.fencing_token, agent.last_run = token, now
    run = CycleRun.objects.create(
        agent=agent,
        queued_at=now,
        status=RunStatus.RUNNING,
        started_at=now,
        heartbeat_at=now,
        lease_expires_at=now + lease_duration(),
        deadline_at=now + timedelta(seconds=agent.timeout_seconds),
        fencing_token=token,
        worker=worker,
        task_id=task_id or "",
        trading_mode=agent.effective_trading_mode,
        config_snapshot=config_values(agent),
        config_version_id=agent.current_version_id,
        **run_values,
    )
    return Claim(run=run, token=token)


def cycle_heartbeat(*, run_id, token, now=None):
    """Renew the lease. Returns (still_held, cancel_requested)."""
    now = now or timezone.now()
    held = CycleRun.objects.filter(pk=run_id, fencing_token=token, status=RunStatus.RUNNING).update(
        lease_expires_at=now + lease_duration(), heartbeat_at=now
    )
    if not held:
        return False, False
    cancel = CycleRun.objects.filter(pk=run_id).values_list("cancel_requested", flat=True).get()
    return True, cancel


def cycle_checkpoint(*, run_id, token, now=None):
    """Raise CycleStop if the cycle should end here: stop requested, deadline passed, lease lost."""
    now = now or timezone.now()
    row = (
        CycleRun.objects.filter(pk=run_id)
        .values("status", "fencing_token", "cancel_requested", "deadline_at")
        .first()
    )
    if row is None or row["status"] != RunStatus.RUNNING or row["fencing_token"] != token:
        raise LeaseLost("This worker no longer holds the run's lease")
    if row["cancel_requested"]:
        raise CycleCancelled("Stop was requested")
    if row["deadline_at"] is not None and now >= row["deadline_at"]:
        raise CycleDeadlineExceeded("The cycle passed its deadline (timeout_seconds)")


def cycle_finish(*, run_id, token, outcome: Outcome, now=None, run=None) -> bool:
    """Write a run's result and the agent's counters; False (and no change) for a stale token.

    `run` is the worker's own claimed run (its start, trigger and slot are known): then the
    finish is the agent's locking read, one fenced UPDATE of the run and one UPDATE of the
    counters, and the run object is given the values written.
    """
    now = now or timezone.now()
    with transaction.atomic():
        if run is None:
            agent_id = CycleRun.objects.values_list("agent_id", flat=True).get(pk=run_id)
        else:
            agent_id = run.agent_id
        agent = agent_locks.FINISH.fetch(agent_id, now)
        if agent is None:
            raise Agent.DoesNotExist(f"Agent {agent_id} does not exist")
        settled = settle_run(
            agent,
            CycleRun.objects.filter(pk=run_id, fencing_token=token, status=RunStatus.RUNNING),
            outcome,
            now=now,
            run=run,
        )
        if settled:
            _after_own_run(agent, now=now)
        return settled


def _after_own_run(agent, *, now):
    """policies.after_run for a worker that just settled its own run: no run of the agent is
    running now (one running run per agent), so only a due slot or a waiting run needs a look."""
    due = agent.state == AgentState.RUNNING and agent.next_run is not None
    if (due and agent.next_run <= now) or agent.has_waiting_runs:
        policies.after_run(agent, now=now)
