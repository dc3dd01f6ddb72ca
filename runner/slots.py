"""Slot arithmetic for interval schedules: pure functions of times, no database.

The claim, the dispatcher and interval changes all move an agent along the same cadence, so the
rule lives here once.
"""

from __future__ import annotations

from datetime import datetime, timedelta


def _interval(minutes: int) -> timedelta:
    return timedelta(minutes=minutes or 1)


def missed_slots(slot: datetime, minutes: int, now: datetime) -> int:
    """How many whole intervals passed between a due slot and now (slots the cycle folds in)."""
    if slot > now:
        return 0
    return int((now - slot) / _interval(minutes))


def next_slot_after(slot: datetime, minutes: int, now: datetime) -> datetime:
    """The first slot of this cadence after `now` (django-q2's rule with catch_up off)."""
    if slot > now:
        return slot
    return slot + (missed_slots(slot, minutes, now) + 1) * _interval(minutes)


def next_run_after_interval_change(last_run: datetime | None, minutes: int, now: datetime):
    """An interval change counts from the last start, and never lands in the past."""
    return max((last_run or now) + _interval(minutes), now)
