"""Run policies as small pure functions: what the claim does with a due slot, and retries.

No database here: the claim (runner/services/cycles.py) and the run settler
(runner/services/policies.py) gather the facts, ask these functions, and write what they say.

Overlap (a slot comes while a run is in flight):
  skip             record the slot as a `skipped` run with the reason (the default);
  buffer_one       keep the slot and run it right after the current run ends; a second slot
                   that comes meanwhile is skipped;
  cancel_previous  ask the in-flight run to stop at its next checkpoint, then start the slot.
Catch-up (slots missed while nothing ran, e.g. downtime):
  latest           run once, for the oldest due slot, and count the rest on it (`missed_slots`);
  window           run each missed slot of the last `catchup_window_minutes`, oldest first, one
                   at a time; older ones are counted on the first run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from runner.choices import CatchupPolicy, OverlapPolicy
from runner.schedules import Spec

RUN, SKIP, WAIT, CANCEL_AND_WAIT = "run", "skip", "wait", "cancel_and_wait"


@dataclass(frozen=True)
class Policy:
    overlap: str = OverlapPolicy.SKIP
    catchup: str = CatchupPolicy.LATEST
    catchup_window: timedelta = timedelta(minutes=60)


def policy_of(agent) -> Policy:
    return Policy(
        overlap=agent.overlap_policy,
        catchup=agent.catchup_policy,
        catchup_window=timedelta(minutes=agent.catchup_window_minutes),
    )


@dataclass(frozen=True)
class SlotDecision:
    """What the claim does with the agent's due slot.

    action     run | skip | wait | cancel_and_wait
    slot       the slot the run (or the skipped record) is for
    missed     slots passed over and counted on that record
    next_run   the agent's next slot afterwards (a waiting slot stays the next slot)
    hold_until the schedule row does not fire before this (a waiting slot is started by the end
               of the run in flight; this is only the backstop)
    note       why, for the run record
    """

    action: str
    slot: datetime
    missed: int
    next_run: datetime
    hold_until: datetime | None = None
    note: str = ""


def _fmt(moment):
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def decide_due_slot(
    spec: Spec,
    policy: Policy,
    *,
    due: datetime,
    now: datetime,
    in_flight: int | None,
    in_flight_cancelling: bool,
    backstop: timedelta,
    in_flight_started: datetime | None = None,
) -> SlotDecision:
    """The decision for the agent's due slot `due` (its fire time has come) at `now`.

    `in_flight` is the id of a run still running (None if none), `in_flight_started` when it
    started, `in_flight_cancelling` whether it was already asked to stop (a stop, or
    cancel_previous). A slot that was due before the run in flight started is a missed slot
    (catch-up), not one that came while it ran (overlap).
    """
    upcoming = spec.next_after(due, now)  # the first slot still in the future
    hold_next = spec.fire_time(upcoming)

    if in_flight is not None:
        latest_due = _latest_due(spec, due, now)
        if in_flight_cancelling:
            return SlotDecision(WAIT, due, 0, due, now + backstop, f"waits for run {in_flight}")
        missed_before_run = (
            in_flight_started is not None and spec.fire_time(due) <= in_flight_started
        )
        if policy.catchup == CatchupPolicy.WINDOW and missed_before_run:
            return SlotDecision(WAIT, due, 0, due, hold_next, "catch-up waits for the run")
        if policy.overlap == OverlapPolicy.BUFFER_ONE:
            if latest_due == due:
                note = f"buffered (buffer_one): came while run {in_flight} was in flight"
                return SlotDecision(WAIT, due, 0, due, hold_next, note)
            note = (
                f"Scheduled cycle skipped (buffer_one): slot {_fmt(due)} is already "
                f"buffered behind run {in_flight}"
            )
            return SlotDecision(SKIP, latest_due, 0, due, hold_next, note)
        if policy.overlap == OverlapPolicy.CANCEL_PREVIOUS:
            note = f"cancel_previous: asked run {in_flight} to stop at its next checkpoint"
            return SlotDecision(CANCEL_AND_WAIT, due, 0, due, now + backstop, note)
        missed = spec.count_between(due, now)
        note = "Scheduled cycle skipped: the previous cycle is still running"
        return SlotDecision(SKIP, due, missed, upcoming, None, note)

    if policy.catchup == CatchupPolicy.WINDOW:
        return _catch_up_window(spec, policy, due=due, now=now, upcoming=upcoming)
    missed = spec.count_between(due, now)
    note = f"caught up (latest): {missed} missed slot(s) folded into this run" if missed else ""
    return SlotDecision(RUN, due, missed, upcoming, None, note)


def _latest_due(spec, due, now):
    """The newest slot whose time has come (the due slot itself when no later one has)."""
    latest = due
    following = spec.next_after(due, due)
    if spec.plain_interval and following <= now:
        step = following - due
        return due + int((now - due) / step) * step
    steps = 0
    while following <= now and steps < 10_000:
        latest, following = following, spec.next_after(due, following)
        steps += 1
    return latest


def _catch_up_window(spec, policy, *, due, now, upcoming):
    """Run the oldest missed slot inside the window; count those before it on its run."""
    oldest_allowed = now - policy.catchup_window
    first = due
    if due < oldest_allowed:
        first = spec.next_after(due, oldest_allowed - timedelta(microseconds=1))
    if first > now:  # every missed slot is older than the window
        missed = spec.count_between(due, now)
        note = (
            f"Scheduled cycle skipped: slot {_fmt(due)} and {missed} later missed slot(s) are "
            f"older than the catch-up window ({policy.catchup_window})"
        )
        return SlotDecision(SKIP, due, missed, upcoming, None, note)
    dropped = 0 if first == due else 1 + spec.count_between(due, first, inclusive=False)
    following = spec.next_after(due, first)
    late = (now - first).total_seconds()
    note = f"catch-up (window): ran {late:.0f} s after its slot" if late >= 1 else ""
    if dropped:
        note += f"; {dropped} older missed slot(s) counted, not run"
    return SlotDecision(RUN, first, dropped, following, None, note.lstrip("; "))


# --- retries --------------------------------------------------------------------------------------


def retry_outcomes(retry_on: str) -> set[str]:
    return {item for item in (retry_on or "").split(",") if item}


def should_retry(*, status: str, attempt: int, attempts: int, retry_on: str) -> bool:
    """A run retries when its outcome is one the agent retries and attempts remain."""
    return attempt < attempts and status in retry_outcomes(retry_on)


def retry_delay(*, base_seconds: int, attempt: int, key: str, max_seconds: float) -> timedelta:
    """Backoff before retry number `attempt` (1, 2, ...): base * 2^(attempt-1) plus a jitter of
    up to half of that, drawn from `key` so it is the same every time it is computed. Each delay
    is longer than the one before (until `max_seconds` caps them)."""
    step = base_seconds * 2 ** (attempt - 1)
    fraction = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
    return timedelta(seconds=min(step * (1 + fraction / 2), max_seconds))
