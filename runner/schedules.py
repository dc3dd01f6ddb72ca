"""Calendar arithmetic of an agent's schedule: pure functions of times, no database.

An agent's slots come from its kind, an interval (every N minutes, counted from a slot) or a cron
expression evaluated in the agent's IANA time zone, filtered by its active windows (local days
and times). Slots are nominal times in UTC; a slot *fires* at `fire_time(slot)`, the slot plus a
jitter that is a hash of the agent and the slot, so every dispatcher and every retried dispatch
of a slot agrees on it.

Daylight-saving time, for cron: the expression is evaluated on the local wall clock. A local time
that does not exist (the spring-forward gap) is skipped, once; a local time that happens twice
(the autumn overlap) runs once, at its first occurrence. Interval schedules count real minutes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

from croniter import croniter

from runner.choices import ScheduleKind

# A schedule whose next slot is further away than this (or needs more steps to find) never fires.
HORIZON = timedelta(days=3660)
MAX_STEPS = 20_000
# Missed slots are counted one by one up to this many (a week of minutes).
MISSED_COUNT_CAP = 10_080
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
_CRON_ALIASES = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


class ScheduleError(ValueError):
    """A schedule setting that cannot work; `field` names it."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field
        self.message = message


class NoSlot(ScheduleError):
    """The schedule produces no slot within HORIZON."""


# --- configuration values -----------------------------------------------------------------------


def parse_zone(name) -> ZoneInfo:
    if not isinstance(name, str) or name not in _zone_names():
        raise ScheduleError(
            "timezone",
            f"timezone must be an IANA time zone such as 'UTC' or 'America/New_York'; "
            f"got {name!r}.",
        )
    return ZoneInfo(name)


def _zone_names():
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    return _ZONES


_ZONES = None


def parse_cron(expression) -> str:
    text = expression.strip() if isinstance(expression, str) else ""
    fields = text.split()
    valid = (text in _CRON_ALIASES) or (len(fields) == 5 and croniter.is_valid(text))
    if not valid:
        raise ScheduleError(
            "cron",
            "cron must be a five-field cron expression (minute hour day-of-month month "
            f"day-of-week, e.g. '30 14 * * mon-fri') or one of {', '.join(sorted(_CRON_ALIASES))};"
            f" got {expression!r}.",
        )
    return text


@dataclass(frozen=True)
class Window:
    """Local days and a time range [start, end) in which slots may fire."""

    days: frozenset[int]
    start: time
    end: time | None  # None: until midnight ("24:00")

    def contains(self, local: datetime) -> bool:
        if local.weekday() not in self.days:
            return False
        moment = local.time().replace(tzinfo=None, fold=0)
        return self.start <= moment and (self.end is None or moment < self.end)

    def as_dict(self) -> dict:
        return {
            "days": [DAY_NAMES[d] for d in sorted(self.days)],
            "start": self.start.strftime("%H:%M"),
            "end": self.end.strftime("%H:%M") if self.end else "24:00",
        }


WINDOW_HELP = (
    'active_windows must be a list of {"days": "mon-fri", "start": "13:30", "end": "20:00"} '
    "(days: names mon..sun, ranges such as mon-fri, or a list; start before end, HH:MM, end "
    "may be 24:00; local to the agent's time zone)"
)


def _parse_days(value) -> frozenset[int]:
    parts = value if isinstance(value, list) else str(value).split(",")
    days = set()
    for part in parts:
        if not isinstance(part, str):
            raise ValueError(part)
        first, _, last = part.strip().lower().partition("-")
        low = DAY_NAMES.index(first)
        high = DAY_NAMES.index(last) if last else low
        if high < low:
            raise ValueError(part)
        days.update(range(low, high + 1))
    return frozenset(days)


def parse_windows(value) -> tuple[Window, ...]:
    """Active windows from their JSON form; refuses a window that never opens."""
    if value in (None, ""):
        return ()
    if not isinstance(value, list) or len(value) > 50:
        raise ScheduleError("active_windows", WINDOW_HELP + "; at most 50 windows.")
    windows = []
    for index, item in enumerate(value):
        where = f"active_windows[{index}]"
        if not isinstance(item, dict) or set(item) - {"days", "start", "end"}:
            raise ScheduleError("active_windows", f"{where}: {WINDOW_HELP}.")
        try:
            days = _parse_days(item.get("days", "mon-sun"))
        except ValueError:
            raise ScheduleError(
                "active_windows",
                f"{where}: days must name days mon..sun; got {item.get('days')!r}.",
            ) from None
        start, end = item.get("start", "00:00"), item.get("end", "24:00")
        if not isinstance(start, str) or not _TIME.match(start):
            raise ScheduleError("active_windows", f"{where}: start must be HH:MM; got {start!r}.")
        if end != "24:00" and (not isinstance(end, str) or not _TIME.match(end)):
            raise ScheduleError(
                "active_windows", f"{where}: end must be HH:MM or 24:00; got {end!r}."
            )
        start_time = time.fromisoformat(start)
        end_time = None if end == "24:00" else time.fromisoformat(end)
        if not days or (end_time is not None and end_time <= start_time):
            raise ScheduleError(
                "active_windows",
                f"{where} never opens: it needs at least one day and a start before its end "
                f"(got {start}-{end}).",
            )
        windows.append(Window(days, start_time, end_time))
    return tuple(windows)


# --- the schedule -------------------------------------------------------------------------------


def to_utc(local: datetime, zone: ZoneInfo) -> datetime | None:
    """A local wall-clock time as UTC: None in a DST gap, the first occurrence in an overlap."""
    aware = local.replace(tzinfo=zone, fold=0)
    utc = aware.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None, fold=0):
        return None
    return utc


@dataclass(frozen=True)
class Spec:
    """Everything that decides an agent's slots (built from the agent by `spec_of`)."""

    agent_id: int
    kind: str = ScheduleKind.INTERVAL
    interval_minutes: int = 60
    cron: str = ""
    zone: ZoneInfo = ZoneInfo("UTC")
    jitter_seconds: int = 0
    windows: tuple[Window, ...] = ()

    @property
    def plain_interval(self) -> bool:
        """An interval with no jitter and no windows: the arithmetic of runner.slots applies."""
        return self.kind == ScheduleKind.INTERVAL and not self.jitter_seconds and not self.windows

    # -- raw slots (before windows) --

    def _raw_next(self, anchor: datetime, moment: datetime) -> datetime:
        """The first slot strictly after `moment`, windows aside (interval: on anchor's grid)."""
        if self.kind == ScheduleKind.CRON:
            return self._cron_next(moment)
        step = timedelta(minutes=self.interval_minutes or 1)
        if moment < anchor:
            return anchor
        return anchor + (int((moment - anchor) / step) + 1) * step

    def _cron_next(self, moment: datetime) -> datetime:
        local = moment.astimezone(self.zone).replace(tzinfo=None)
        found = croniter(self.cron, local)
        for _ in range(MAX_STEPS):
            candidate = to_utc(found.get_next(datetime), self.zone)
            # None: a local time in the DST gap. Earlier than `moment`: the second pass through
            # an overlap, whose local times already ran at their first occurrence.
            if candidate is not None and candidate > moment:
                return candidate
        raise NoSlot("cron", f"cron {self.cron!r} finds no time after {moment.isoformat()}.")

    # -- windows --

    def in_window(self, moment: datetime) -> bool:
        if not self.windows:
            return True
        local = moment.astimezone(self.zone)
        return any(window.contains(local) for window in self.windows)

    def _next_opening(self, moment: datetime) -> datetime | None:
        """The first instant after `moment` at which a window opens."""
        local_day = moment.astimezone(self.zone).date()
        openings = []
        for offset in range(8):
            day = local_day + timedelta(days=offset)
            for window in self.windows:
                if day.weekday() in window.days:
                    opening = self._local_instant(datetime.combine(day, window.start))
                    if opening > moment:
                        openings.append(opening)
            if openings:
                return min(openings)
        return None

    def _local_instant(self, local: datetime) -> datetime:
        """A local time as UTC; in a DST gap, the moment the clocks jump to."""
        exact = to_utc(local, self.zone)
        return exact if exact is not None else local.replace(tzinfo=self.zone).astimezone(UTC)

    # -- slots --

    def next_after(self, anchor: datetime, moment: datetime) -> datetime:
        """The first slot strictly after `moment` that lies in an active window."""
        limit = moment + HORIZON
        candidate = self._raw_next(anchor, moment)
        for _ in range(MAX_STEPS):
            if candidate > limit:
                break
            if self.in_window(candidate):
                return candidate
            opening = self._next_opening(candidate)
            if opening is None:
                break
            candidate = self._raw_next(anchor, opening - timedelta(microseconds=1))
        raise NoSlot(
            "active_windows",
            "The schedule never fires: no slot of it falls inside the active windows.",
        )

    def upcoming(self, anchor: datetime, moment: datetime, count: int) -> list[datetime]:
        """`count` slots after `moment`."""
        found = []
        for _ in range(count):
            moment = self.next_after(anchor, moment)
            found.append(moment)
        return found

    def fire_time(self, slot: datetime) -> datetime:
        """When a slot fires: the slot plus its jitter, 0..jitter_seconds, the same every time
        for this agent and slot, and always before the next slot could come."""
        if not self.jitter_seconds or slot is None:
            return slot
        gap = int((self._raw_next(slot, slot) - slot).total_seconds())
        cap = min(self.jitter_seconds, max(gap - 1, 0))
        key = f"{self.agent_id}:{slot.astimezone(UTC).isoformat()}".encode()
        offset = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % (cap + 1)
        return slot + timedelta(seconds=offset)

    def count_between(self, first: datetime, end: datetime, *, inclusive=True) -> int:
        """How many slots after `first` come before `end` (up to and including it if inclusive)."""
        if self.plain_interval:
            step = timedelta(minutes=self.interval_minutes or 1)
            if end < first:
                return 0
            whole = int((end - first) / step)
            if not inclusive and first + whole * step == end:
                whole -= 1
            return max(whole, 0)
        count, moment = 0, first
        while count < MISSED_COUNT_CAP:
            try:
                moment = self.next_after(first, moment)
            except NoSlot:
                break
            if moment > end or (not inclusive and moment == end):
                break
            count += 1
        return count


def spec_of(agent) -> Spec:
    """The agent's schedule (its configuration must have passed `check_schedule`)."""
    kind = agent.schedule_kind or ScheduleKind.INTERVAL
    return Spec(
        agent_id=agent.pk or 0,
        kind=kind,
        interval_minutes=agent.interval_minutes,
        cron=agent.cron if kind == ScheduleKind.CRON else "",
        zone=ZoneInfo(agent.timezone or "UTC"),
        jitter_seconds=agent.jitter_seconds or 0,
        windows=parse_windows(agent.active_windows),
    )


def check_schedule(agent, *, now) -> dict[str, list[str]]:
    """{field: [message]} for every schedule setting that cannot work (empty when all is well).
    Normalises the cron text and the windows on the agent."""
    errors = {}
    try:
        parse_zone(agent.timezone)
        if agent.schedule_kind == ScheduleKind.CRON:
            agent.cron = parse_cron(agent.cron)
        windows = parse_windows(agent.active_windows)
        agent.active_windows = [window.as_dict() for window in windows]
        spec_of(agent).next_after(now, now)
    except ScheduleError as exc:
        errors[exc.field] = [exc.message]
    except (TypeError, ValueError, OverflowError):
        pass  # an interval or jitter of the wrong type or size: its field's own check says so
    return errors


def preview(agent, *, count: int, now: datetime) -> list[dict]:
    """The next `count` fire times of the agent, from its next slot if it has one."""
    spec = spec_of(agent)
    anchor = agent.next_run or agent.paused_next_run
    if anchor is not None and anchor > now:
        slots = [anchor, *spec.upcoming(anchor, anchor, count - 1)] if count else []
    else:
        slots = spec.upcoming(anchor or now, now, count)
    zone = spec.zone
    rows = []
    for slot in slots:
        fires = spec.fire_time(slot)
        rows.append(
            {
                "slot": slot.astimezone(UTC),
                "fires_at": fires.astimezone(UTC),
                "fires_at_local": fires.astimezone(zone).isoformat(),
            }
        )
    return rows


def next_run_after_change(agent, now: datetime) -> datetime:
    """The next slot after the schedule was changed (interval, kind, cron, zone, windows).

    An interval counts from the last start and never lands in the past (runner.slots); a cron
    schedule takes its first time after now. Either way the slot must lie in an active window.
    """
    spec = spec_of(agent)
    if spec.kind == ScheduleKind.CRON:
        return spec.next_after(now, now)
    step = timedelta(minutes=spec.interval_minutes or 1)
    candidate = max((agent.last_run or now) + step, now)
    if spec.in_window(candidate):
        return candidate
    return spec.next_after(candidate, candidate)
