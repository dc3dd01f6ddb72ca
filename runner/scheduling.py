"""Keeps each agent's django-q2 work in step with its runner state, and dispatches due slots.

`sync_schedule` is called by runner.services inside the transaction of every transition, so the
agent's `Schedule` row can never disagree with the state it was written beside. The Schedule row is
also the dispatch token: whoever moves its `next_run` past a slot (django-q2's own scheduler, which
passes about every 30 s, or our dispatcher, which wakes at the slot) is the one that queues it.
A duplicate is harmless anyway: the task passes its slot, and the claim re-checks the agent's state
and `next_run`, so a second delivery of a slot is a no-op (backed by unique (agent, slot)).

Cycles queued by a transition go out with `transaction.on_commit`, so a worker never sees a run or
a state change before it is committed.
"""

from __future__ import annotations

import ast
import logging
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_q.models import Schedule
from django_q.tasks import async_task

from runner import schedules, slots
from runner.conf import conf
from runner.models import Agent, AgentState, CycleRun, RunStatus, RunTrigger
from runner.task_batch import TaskBatch

logger = logging.getLogger(__name__)

SCHEDULED_TASK = "runner.tasks.run_scheduled_cycle"
QUEUED_TASK = "runner.tasks.run_queued_cycle"
SCHEDULE_PREFIX = "runner:agent:"
# The slot is handed to the task under this keyword, by django-q2's scheduler and by ours alike.
SLOT_KWARG = "slot"


def schedule_name(agent):
    return f"{SCHEDULE_PREFIX}{agent.pk}"


def task_options(timeout_seconds) -> dict:
    """django-q2 options of one cycle task: its hard timeout sits above the cycle's own deadline
    (`timeout_seconds`), so the cycle stops itself first and django-q2 only kills a hung one.
    A cycle's record is its CycleRun: django-q2 keeps no second copy of a successful result
    (`save: False`; a task that failed in django-q2's own hands is still saved)."""
    return {
        "timeout": int(timeout_seconds) + conf.RUNNER_HARD_TIMEOUT_MARGIN_SECONDS,
        "save": False,
    }


def fire_time(agent, slot):
    """When the agent's slot fires: the slot itself unless the agent has jitter."""
    if not agent.jitter_seconds or slot is None:
        return slot
    return schedules.spec_of(agent).fire_time(slot)


def sync_schedule(agent, *, not_before=None):
    """Create, update or remove the agent's Schedule row to match its state and next run.

    The row fires at the next slot's fire time (with its jitter), or at `not_before` if that is
    later: a slot that waits for the run in flight is started by that run's end, and the row is
    only the backstop then. Cron agents' rows tick every minute for django-q2's own scheduler (it
    cannot evaluate their zone and windows); the claim puts the row back on the real slot.
    """
    name = schedule_name(agent)
    if agent.state == AgentState.RUNNING and agent.next_run is not None:
        fires = fire_time(agent, agent.next_run)
        minutes = agent.interval_minutes if agent.schedule_kind != "cron" else 1
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": SCHEDULED_TASK,
                "args": str(agent.pk),
                "schedule_type": Schedule.MINUTES,
                "minutes": minutes,
                "next_run": max(fires, not_before) if not_before else fires,
                "repeats": -1,
                "intended_date_kwarg": SLOT_KWARG,
                # django-q2's scheduler passes these q_options on to the task it queues
                "kwargs": repr({"q_options": task_options(agent.timeout_seconds)}),
            },
        )
    else:
        Schedule.objects.filter(name=name).delete()


def enqueue_scheduled_cycle(agent):
    """Queue the agent's due slot once the current transaction commits (start, resume).

    The Schedule row moves on to the following slot in the same transaction, so neither the
    dispatcher nor django-q2's scheduler sends this slot a second time.
    """
    slot = agent.next_run
    Schedule.objects.filter(name=schedule_name(agent)).update(
        next_run=following_fire(agent, slot, slot)
    )
    agent_id, options = agent.pk, task_options(agent.timeout_seconds)
    transaction.on_commit(
        lambda: async_task(
            SCHEDULED_TASK,
            agent_id,
            slot=slot.isoformat(),
            group=f"{SCHEDULE_PREFIX}{agent_id}",
            q_options=options,
        )
    )


def following_fire(agent, slot, now):
    """When the agent's schedule row fires after sending `slot` at `now`: the first slot after now,
    with its jitter. Plain interval agents keep runner.slots' arithmetic."""
    if agent.schedule_kind != "cron" and not agent.jitter_seconds and not agent.active_windows:
        return slots.next_slot_after(slot, agent.interval_minutes, now)
    spec = schedules.spec_of(agent)
    anchor = agent.next_run or slot
    return spec.fire_time(spec.next_after(anchor, max(now, anchor)))


def enqueue_queued_run(run_id, *, timeout_seconds=None):
    """Queue a run that already exists with status `queued` once the transaction commits."""
    options = task_options(timeout_seconds) if timeout_seconds is not None else {"save": False}

    def _send():
        task_id = async_task(QUEUED_TASK, run_id, q_options=options)
        CycleRun.objects.filter(pk=run_id, task_id="").update(task_id=task_id or "")

    transaction.on_commit(_send)


def parse_slot(value) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    parsed = parse_datetime(str(value))
    if parsed is None:
        raise ValueError(f"Not an ISO date-time slot: {value!r}")
    return parsed


# --- the dispatcher (manage.py rundispatcher) ---------------------------------------------------


def agent_schedules():
    return Schedule.objects.filter(name__startswith=SCHEDULE_PREFIX, func=SCHEDULED_TASK).exclude(
        repeats=0
    )


def dispatch_due_slots(*, now=None) -> list[tuple[int, datetime]]:
    """Queue every agent slot that is due now; returns the (agent id, slot) pairs this call sent.

    One query finds the due rows; one conditional UPDATE moves each of them on to its following
    fire time, but only where `next_run` still equals the slot that was read, and returns the rows
    it moved (the claim django-q2's ORM broker uses for tasks, for a whole batch). So several
    dispatchers and django-q2's scheduler never send one slot twice. The tasks are queued in that
    same transaction: with the ORM broker a worker sees them when the batch commits; with Redis
    they are sent before commit, so a failed commit leaves at worst a duplicate, a no-op claim.
    The tasks go to the broker together (runner.task_batch: one INSERT on the ORM broker).
    """
    now = now or timezone.now()
    due = list(
        agent_schedules()
        .filter(next_run__lte=now)
        .values_list("pk", "name", "args", "next_run", "minutes", "kwargs")
    )
    if not due:
        return []
    timing = _schedule_timing({int(row[2]) for row in due})
    moves = {}
    for pk, _name, args, slot, minutes, _kwargs in due:
        agent = timing.get(int(args))
        moves[pk] = (
            slot,
            following_fire(agent, slot, now)
            if agent is not None
            else slots.next_slot_after(slot, minutes, now),
        )
    sent, batch = [], TaskBatch()
    with transaction.atomic():
        taken = _take_slots(moves)
        for pk, name, args, slot, _minutes, kwargs in due:
            if pk not in taken:
                continue  # another dispatcher or django-q2's scheduler sent it first
            options = ast.literal_eval(kwargs).get("q_options", {}) if kwargs else {}
            agent_id = int(args)
            batch.add(
                SCHEDULED_TASK, agent_id, slot=slot.isoformat(), group=name, q_options=options
            )
            sent.append((agent_id, slot))
        batch.flush()  # one INSERT of every task on the ORM broker
    return sent


def _take_slots(moves: dict) -> set:
    """One conditional UPDATE of the due Schedule rows: each row whose `next_run` still equals
    the slot read moves on to its following fire time. Returns the ids of the rows it moved.

    Raw SQL for its RETURNING (PostgreSQL, and SQLite since 3.35), which Django's update() lacks;
    the datetimes are adapted as the ORM stores them, so equality holds on SQLite's text too."""
    adapt, quote = connection.ops.adapt_datetimefield_value, connection.ops.quote_name
    table = quote(Schedule._meta.db_table)
    pk_column = quote(Schedule._meta.pk.column)
    next_run = quote(Schedule._meta.get_field("next_run").column)
    cases, matches, params_set, params_where = [], [], [], []
    for pk, (slot, following) in moves.items():
        cases.append("WHEN %s THEN %s")
        params_set += [pk, adapt(following)]
        matches.append(f"({pk_column} = %s AND {next_run} = %s)")
        params_where += [pk, adapt(slot)]
    sql = (
        f"UPDATE {table} SET {next_run} = CASE {pk_column} {' '.join(cases)} END "
        f"WHERE {' OR '.join(matches)} RETURNING {pk_column}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params_set + params_where)
        return {row[0] for row in cursor.fetchall()}


def _schedule_timing(agent_ids) -> dict:
    """The fields that time each agent's slots, in one query for a pass's due rows."""
    if not agent_ids:
        return {}
    fields = ("pk", "next_run", "interval_minutes", *Agent.SCHEDULE_FIELDS)
    return {agent.pk: agent for agent in Agent.objects.filter(pk__in=agent_ids).only(*fields)}


def redispatch_overdue(*, now=None, grace_seconds, already_sent: set) -> int:
    """Send again any slot whose task was taken but never claimed (lost in a crashed cluster or a
    broker outage): the agent is running and its `next_run` passed more than `grace_seconds` ago.
    Likewise manual runs still queued after `grace_seconds`. `already_sent` remembers what was
    resent, so each is resent once per dispatcher; a resend that meets a live task is a no-op."""
    now = now or timezone.now()
    overdue = Agent.objects.filter(
        state=AgentState.RUNNING, next_run__lt=now - timedelta(seconds=grace_seconds)
    ).values_list("pk", "next_run", "timeout_seconds", "jitter_seconds")
    sent = 0
    for agent_id, slot, timeout_seconds, jitter_seconds in overdue:
        if (agent_id, slot) in already_sent:
            continue
        if jitter_seconds and _fires_later(agent_id, slot, now - timedelta(seconds=grace_seconds)):
            continue  # its jitter holds it back: not lost, just not due yet
        already_sent.add((agent_id, slot))
        logger.warning("agent %s slot %s is overdue; queueing it again", agent_id, slot)
        async_task(
            SCHEDULED_TASK,
            agent_id,
            slot=slot.isoformat(),
            group=f"{SCHEDULE_PREFIX}{agent_id}",
            q_options=task_options(timeout_seconds),
        )
        sent += 1
    # Manual runs sent to the cluster but still queued (CLI runs are claimed by their own process
    # and never sent). A resend is harmless: only a run still `queued` can be claimed.
    stale = CycleRun.objects.filter(
        Q(trigger__in=(RunTrigger.MANUAL, RunTrigger.BACKFILL)) | Q(attempt__gt=0),
        status=RunStatus.QUEUED,
        queued_at__lt=now - timedelta(seconds=grace_seconds),
    ).exclude(task_id="")
    for run_id, timeout_seconds in stale.values_list("pk", "agent__timeout_seconds"):
        if ("run", run_id) in already_sent:
            continue
        already_sent.add(("run", run_id))
        logger.warning("manual run %s is still queued; queueing it again", run_id)
        async_task(QUEUED_TASK, run_id, q_options=task_options(timeout_seconds))
        sent += 1
    return sent


def _fires_later(agent_id, slot, moment) -> bool:
    agent = Agent.objects.filter(pk=agent_id).first()
    return agent is not None and fire_time(agent, slot) >= moment


def seconds_to_next_slot(*, now=None) -> float | None:
    now = now or timezone.now()
    upcoming = agent_schedules().order_by("next_run").values_list("next_run", flat=True).first()
    if upcoming is None:
        return None
    return max((upcoming - now).total_seconds(), 0.0)
