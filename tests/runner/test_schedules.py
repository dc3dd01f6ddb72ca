"""Calendar slots: cron in a zone across the DST changes of 2026 and 2027, windows, jitter.

The expected lists are written by hand from the published transition dates: America/New_York
springs forward on 2026-03-08 and 2027-03-14 (02:00 -> 03:00) and falls back on 2026-11-01 and
2027-11-07 (02:00 -> 01:00); Europe/London on 2026-03-29 and 2027-03-28 (01:00 -> 02:00) and
2026-10-25 and 2027-10-31 (02:00 -> 01:00).
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner import schedules
from runner.schedules import Spec


def utc(text):
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def cron(expression, zone, **kwargs):
    return Spec(agent_id=7, kind="cron", cron=expression, zone=ZoneInfo(zone), **kwargs)


def slots(spec, start, count):
    return [s.isoformat() for s in spec.upcoming(utc(start), utc(start), count)]


def iso(*texts):
    return [utc(t).isoformat() for t in texts]


@pytest.mark.parametrize(
    ("zone", "start", "expected"),
    [
        # New York, 02:30 does not exist on the spring-forward day: that day has no slot.
        (
            "America/New_York",
            "2026-03-06T12:00",
            iso("2026-03-07T07:30", "2026-03-09T06:30", "2026-03-10T06:30"),
        ),
        (
            "America/New_York",
            "2027-03-12T12:00",
            iso("2027-03-13T07:30", "2027-03-15T06:30", "2027-03-16T06:30"),
        ),
        # The autumn day still has its 02:30 (after the overlap), once.
        (
            "America/New_York",
            "2026-10-30T12:00",
            iso("2026-10-31T06:30", "2026-11-01T07:30", "2026-11-02T07:30"),
        ),
    ],
)
def test_a_daily_cron_at_0230_skips_the_missing_local_time_once(zone, start, expected):
    assert slots(cron("30 2 * * *", zone), start, 3) == expected


@pytest.mark.parametrize(
    ("zone", "start", "expected"),
    [
        # 01:30 happens twice on the fall-back day: it runs once, at its first occurrence.
        (
            "America/New_York",
            "2026-10-30T12:00",
            iso("2026-10-31T05:30", "2026-11-01T05:30", "2026-11-02T06:30"),
        ),
        (
            "America/New_York",
            "2027-11-05T12:00",
            iso("2027-11-06T05:30", "2027-11-07T05:30", "2027-11-08T06:30"),
        ),
        (
            "Europe/London",
            "2026-10-23T12:00",
            iso("2026-10-24T00:30", "2026-10-25T00:30", "2026-10-26T01:30"),
        ),
        (
            "Europe/London",
            "2027-10-29T12:00",
            iso("2027-10-30T00:30", "2027-10-31T00:30", "2027-11-01T01:30"),
        ),
        # London's 01:30 does not exist on the spring-forward day.
        (
            "Europe/London",
            "2026-03-27T12:00",
            iso("2026-03-28T01:30", "2026-03-30T00:30", "2026-03-31T00:30"),
        ),
        (
            "Europe/London",
            "2027-03-26T12:00",
            iso("2027-03-27T01:30", "2027-03-29T00:30", "2027-03-30T00:30"),
        ),
    ],
)
def test_a_daily_cron_at_0130_runs_once_through_an_overlap_and_skips_a_gap(zone, start, expected):
    assert slots(cron("30 1 * * *", zone), start, 3) == expected


def test_every_half_hour_across_new_york_spring_forward_loses_no_real_time():
    # 01:00, 01:30 EST; 02:00 and 02:30 do not exist; 03:00, 03:30 EDT.
    assert slots(cron("*/30 * * * *", "America/New_York"), "2026-03-08T05:59", 4) == iso(
        "2026-03-08T06:00", "2026-03-08T06:30", "2026-03-08T07:00", "2026-03-08T07:30"
    )


def test_every_half_hour_across_new_york_fall_back_runs_each_local_time_once():
    # 00:00 .. 01:30 EDT, then 01:00 and 01:30 EST are the same local times again: not repeated.
    assert slots(cron("*/30 * * * *", "America/New_York"), "2026-11-01T03:59", 6) == iso(
        "2026-11-01T04:00",
        "2026-11-01T04:30",
        "2026-11-01T05:00",
        "2026-11-01T05:30",
        "2026-11-01T07:00",
        "2026-11-01T07:30",
    )


def test_every_half_hour_across_london_2027_changes():
    spec = cron("*/30 * * * *", "Europe/London")
    # 28 March 2027: 00:30 GMT, then 01:00 and 01:30 do not exist, then 02:00 BST (= 01:00 UTC).
    assert slots(spec, "2027-03-28T00:00", 3) == iso(
        "2027-03-28T00:30", "2027-03-28T01:00", "2027-03-28T01:30"
    )
    # 31 October 2027: 01:00 and 01:30 BST run; the same local times in GMT do not.
    assert slots(spec, "2027-10-30T23:59", 5) == iso(
        "2027-10-31T00:00",
        "2027-10-31T00:30",
        "2027-10-31T02:00",
        "2027-10-31T02:30",
        "2027-10-31T03:00",
    )


def test_an_interval_counts_real_minutes_through_dst():
    spec = Spec(agent_id=1, interval_minutes=60, zone=ZoneInfo("America/New_York"))
    anchor = utc("2026-03-08T05:00")
    assert spec.upcoming(anchor, anchor, 3) == [
        utc("2026-03-08T06:00"),
        utc("2026-03-08T07:00"),
        utc("2026-03-08T08:00"),
    ]


def test_active_windows_keep_slots_inside_new_york_trading_hours():
    windows = schedules.parse_windows([{"days": "mon-fri", "start": "13:30", "end": "20:00"}])
    # Every 2 hours; Friday 2026-03-06 evening to Monday 2026-03-09 (DST began on Sunday).
    spec = cron("0 */2 * * *", "America/New_York", windows=windows)
    assert slots(spec, "2026-03-06T20:00", 4) == iso(
        "2026-03-06T21:00",  # Fri 16:00 EST
        "2026-03-06T23:00",  # Fri 18:00 EST
        "2026-03-09T18:00",  # Mon 14:00 EDT (the weekend is closed)
        "2026-03-09T20:00",  # Mon 16:00 EDT
    )
    interval = Spec(
        agent_id=1, interval_minutes=90, zone=ZoneInfo("America/New_York"), windows=windows
    )
    anchor = utc("2026-03-09T12:00")  # Mon 08:00 EDT: before the window opens
    assert interval.next_after(anchor, anchor) == utc("2026-03-09T18:00")  # 14:00 on the grid


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ([{"days": "mon-fri", "start": "20:00", "end": "13:30"}], "never opens"),
        ([{"days": [], "start": "09:00", "end": "10:00"}], "never opens"),
        ([{"days": "fri-mon"}], "days must name"),
        ([{"start": "25:00"}], "start must be HH:MM"),
        ([{"start": "09:00", "until": "10:00"}], "active_windows[0]"),
        ({"days": "mon"}, "must be a list"),
    ],
)
def test_windows_that_cannot_work_are_refused_naming_the_field(value, fragment):
    with pytest.raises(schedules.ScheduleError) as caught:
        schedules.parse_windows(value)
    assert caught.value.field == "active_windows" and fragment in caught.value.message


def test_a_cron_that_never_meets_its_window_is_refused():
    windows = schedules.parse_windows([{"days": "mon-fri", "start": "13:30", "end": "20:00"}])
    spec = cron("0 3 * * *", "America/New_York", windows=windows)
    with pytest.raises(schedules.NoSlot):
        spec.next_after(utc("2026-01-01T00:00"), utc("2026-01-01T00:00"))


@pytest.mark.parametrize("bad", ["", "* * * *", "61 * * * *", "* * * * * *", "@reboot", "nonsense"])
def test_bad_cron_expressions_are_refused(bad):
    with pytest.raises(schedules.ScheduleError) as caught:
        schedules.parse_cron(bad)
    assert caught.value.field == "cron" and "five-field" in caught.value.message


@pytest.mark.parametrize("bad", ["Mars/Olympus", "", "utc+1", None, "../etc"])
def test_unknown_zones_are_refused(bad):
    with pytest.raises(schedules.ScheduleError) as caught:
        schedules.parse_zone(bad)
    assert caught.value.field == "timezone"


def test_jitter_is_stable_per_slot_and_within_bounds():
    spec = cron("*/5 * * * *", "UTC", jitter_seconds=120)
    moments = spec.upcoming(utc("2026-05-01T00:00"), utc("2026-05-01T00:00"), 50)
    offsets = [(spec.fire_time(m) - m).total_seconds() for m in moments]
    assert offsets == [(spec.fire_time(m) - m).total_seconds() for m in moments]  # stable
    assert all(0 <= o <= 120 for o in offsets) and len(set(offsets)) > 10  # spread, bounded
    other_agent = Spec(**{**spec.__dict__, "agent_id": 8})
    assert [other_agent.fire_time(m) for m in moments] != [spec.fire_time(m) for m in moments]


def test_jitter_never_reaches_the_next_slot():
    spec = cron("* * * * *", "UTC", jitter_seconds=3600)  # asked for more than the gap
    moments = spec.upcoming(utc("2026-05-01T00:00"), utc("2026-05-01T00:00"), 100)
    assert all(0 <= (spec.fire_time(m) - m).total_seconds() <= 59 for m in moments)


# --- properties ---------------------------------------------------------------------------------

ZONES = ["UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata"]
# Every expression fires within any hour, and every window is open for at least an hour, so each
# combination has slots (a combination without any is refused when it is configured).
CRONS = ["* * * * *", "*/7 * * * *", "15 * * * *", "0,30 * * * *", "59 * * * *"]
window_strategy = st.tuples(
    st.sampled_from(["mon-fri", "sat,sun", "mon-sun", "wed"]),
    st.integers(0, 22),
    st.integers(1, 6),
).map(lambda t: {"days": t[0], "start": f"{t[1]:02d}:00", "end": f"{min(t[1] + t[2], 23):02d}:59"})


@settings(derandomize=True, max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(["cron", "interval"]),
    expression=st.sampled_from(CRONS),
    minutes=st.integers(1, 120),
    zone=st.sampled_from(ZONES),
    windows=st.lists(window_strategy, max_size=2),
    jitter=st.integers(0, 900),
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)),
)
def test_slots_increase_stay_in_their_windows_and_jitter_is_bounded_and_stable(
    kind, expression, minutes, zone, windows, jitter, start
):
    spec = Spec(
        agent_id=3,
        kind=kind,
        interval_minutes=minutes,
        cron=expression,
        zone=ZoneInfo(zone),
        jitter_seconds=jitter,
        windows=schedules.parse_windows(windows),
    )
    start = start.replace(tzinfo=UTC)
    found = spec.upcoming(start, start, 12)
    assert all(a < b for a, b in zip(found, found[1:], strict=False))
    assert all(spec.in_window(moment) for moment in found)
    fires = [spec.fire_time(moment) for moment in found]
    assert all(0 <= (f - m).total_seconds() <= jitter for f, m in zip(fires, found, strict=True))
    assert fires == [spec.fire_time(moment) for moment in found]
    assert all(a < b for a, b in zip(fires, fires[1:], strict=False))
    assert all(f < timedelta(days=3660) + start for f in fires)
