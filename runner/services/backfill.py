"""Backfill: queue the slots of a past range as runs marked `backfill`, one audited request.

The runs go one at a time, oldest first: the first is sent at once (unless a run is in flight)
and the end of each run sends the next (runner.services.policies.after_run). A slot that already
has a run is left alone, so a slot still never runs twice; a stop drops the backfill runs still
waiting.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.utils import timezone

from runner import schedules, scheduling
from runner.actors import Actor
from runner.conf import conf
from runner.errors import InvalidInput, TransitionRefused
from runner.models import AuditAction, CycleRun, RunStatus, RunTrigger
from runner.services.audit import audited, checked
from runner.validation import parse_iso_moment

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


def _moment(value, field) -> datetime:
    if isinstance(value, datetime):
        return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)
    text = value.strip() if isinstance(value, str) and "\x00" not in value else ""
    moment = parse_iso_moment(text) if text else None
    if moment is None:
        raise InvalidInput(
            f"{field} must be an ISO 8601 date or datetime (UTC if it names no offset); "
            f"got {value!r}.",
            field=field,
        )
    return moment


def backfill_slots(agent, start: datetime, end: datetime) -> list[datetime]:
    """The agent's slots in [start, end]: cron times (in its zone and windows), or an interval
    counted from `start`. Refuses a range with more than RUNNER_BACKFILL_MAX_SLOTS."""
    spec = schedules.spec_of(agent)
    limit = conf.RUNNER_BACKFILL_MAX_SLOTS
    found = []
    moment = start - timedelta(microseconds=1)
    while True:
        try:
            moment = spec.next_after(start, moment)
        except schedules.NoSlot:
            break
        if moment > end:
            break
        found.append(moment)
        if len(found) > limit:
            raise InvalidInput(
                f"from: the range holds more than {limit} slots (RUNNER_BACKFILL_MAX_SLOTS); "
                "backfill a shorter range.",
                field="from",
            )
    return found


def parse_range(agent, start, end, *, now) -> tuple[datetime, datetime, list[datetime]]:
    start, end = _moment(start, "from"), _moment(end, "to")
    if start < EARLIEST:
        raise InvalidInput(
            f"from must be after {EARLIEST.date().isoformat()}; got {start.isoformat()}.",
            field="from",
        )
    if end > now:
        raise InvalidInput(f"to must not be in the future; got {end.isoformat()}.", field="to")
    if start >= end:
        raise InvalidInput(
            f"from must be before to; got {start.isoformat()} and {end.isoformat()}.",
            field="from",
        )
    return start, end, backfill_slots(agent, start, end)


def agent_backfill(*, agent, start, end, actor: Actor, reason="", now=None) -> list[CycleRun]:
    """Queue a run marked `backfill` for each of the agent's slots in [start, end] that has no
    run yet; returns them. Refused (and audited) with a bad range or when every slot has run."""
    now = now or timezone.now()
    start, end, slots = checked(
        lambda: parse_range(agent, start, end, now=now),
        agent=agent,
        action=AuditAction.BACKFILL,
        actor=actor,
        now=now,
        reason=reason,
    )

    def apply(locked, change):
        recorded = set(
            CycleRun.objects.filter(agent=locked, slot__in=slots, attempt=0).values_list(
                "slot", flat=True
            )
        )
        todo = [slot for slot in slots if slot not in recorded]
        if not todo:
            raise TransitionRefused(
                f"Nothing to backfill: the range holds {len(slots)} slot(s) and each has a run",
                state=locked.state,
            )
        note = f"backfill of {start.isoformat()} .. {end.isoformat()}"
        runs = CycleRun.objects.bulk_create(
            CycleRun(
                agent=locked,
                trigger=RunTrigger.BACKFILL,
                requested_by=actor.user if actor.user is not None and actor.user.pk else None,
                slot=slot,
                status=RunStatus.QUEUED,
                queued_at=now,
                trading_mode=locked.effective_trading_mode,
                policy_note=note,
            )
            for slot in todo
        )
        change.changes = {
            "backfill": {
                "before": None,
                "after": {
                    "from": start.isoformat(),
                    "to": end.isoformat(),
                    "queued": len(todo),
                    "already_recorded": len(slots) - len(todo),
                },
            }
        }
        change.result = runs
        if not CycleRun.objects.filter(agent=locked, status=RunStatus.RUNNING).exists():
            first = CycleRun.objects.get(agent=locked, slot=todo[0], attempt=0)
            scheduling.enqueue_queued_run(first.pk, timeout_seconds=locked.timeout_seconds)

    return audited(
        agent=agent, action=AuditAction.BACKFILL, actor=actor, reason=reason, now=now, apply=apply
    )
