"""What a user types for a report (`since`, `until`, `bucket`), parsed into a window and buckets.

Kept apart from the queries so the command's, the API's and the admin form's checks are one set,
and every refusal is an `InvalidInput` naming the parameter (the API turns it into a 400).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from runner import validation
from runner.errors import InvalidInput

DEFAULT_SINCE = "7d"
BUCKETS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}
DEFAULT_BUCKET = "day"
# More buckets than this make an unreadable chart and a huge response: ask for a coarser bucket.
MAX_BUCKETS = 2000
MAX_WINDOW = timedelta(days=36600)
WINDOW_HELP = "a duration before now such as 30m, 12h, 7d or 2w, or an ISO 8601 date or datetime"


def parse_duration(value, *, field) -> timedelta:
    """`30m`, `12h`, `7d`, `2w` -> timedelta, at most a report's longest window."""
    return validation.parse_duration(value, field=field, maximum=MAX_WINDOW)


def parse_moment(value, *, field, now) -> datetime:
    """A point in time: `now`, a duration before now (`7d`), or an ISO date or datetime (UTC if naive)."""
    text = str(value).strip()
    if text.lower() == "now":
        return now
    if validation.DURATION_PATTERN.match(text):
        return now - parse_duration(text, field=field)
    moment = validation.parse_iso_moment(text)
    if moment is None:
        raise InvalidInput(f"{field} must be {WINDOW_HELP}; got {value!r}.", field=field)
    return moment


def parse_window(since=None, until=None, *, now=None) -> tuple[datetime, datetime]:
    """[since, until) from the strings users type; since defaults to 7d, until to now."""
    now = now or timezone.now()
    since_at = parse_moment(
        since if since not in (None, "") else DEFAULT_SINCE, field="since", now=now
    )
    until_at = parse_moment(until if until not in (None, "") else "now", field="until", now=now)
    if until_at <= since_at:
        raise InvalidInput(
            f"until must be after since (since={since_at.isoformat()}, until={until_at.isoformat()}).",
            field="until",
        )
    return since_at, until_at


def parse_bucket(value) -> str:
    bucket = DEFAULT_BUCKET if value in (None, "") else str(value).strip().lower()
    if bucket not in BUCKETS:
        raise InvalidInput(
            f"bucket must be one of {', '.join(BUCKETS)}; got {value!r}.", field="bucket"
        )
    return bucket


def bucket_starts(since, until, bucket) -> list[datetime]:
    """Every bucket start from the one holding `since` up to `until` (UTC; weeks start Monday)."""
    since = since.astimezone(UTC)
    if bucket == "hour":
        first = since.replace(minute=0, second=0, microsecond=0)
    else:
        first = since.replace(hour=0, minute=0, second=0, microsecond=0)
        if bucket == "week":
            first -= timedelta(days=first.weekday())
    step = BUCKETS[bucket]
    count = math.ceil((until - first) / step)
    if count > MAX_BUCKETS:
        raise InvalidInput(
            f"bucket {bucket!r} gives {count} buckets for this window (at most {MAX_BUCKETS}); "
            "choose a coarser bucket or a shorter window.",
            field="bucket",
        )
    return [first + i * step for i in range(count)]
