"""The calendar schedule and run policies of an agent: part of its configuration, in one place.

An abstract model that `runner.models.Agent` inherits, so the group of fields (and its checks,
in `Agent.Meta.constraints`) stays together; runner/schedules.py and runner/policy_rules.py read
them.
"""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from runner.choices import (
    CATCHUP_WINDOW_MAX,
    CATCHUP_WINDOW_MIN,
    JITTER_MAX,
    RETRY_ATTEMPTS_MAX,
    RETRY_BACKOFF_MAX,
    RETRY_BACKOFF_MIN,
    CatchupPolicy,
    OverlapPolicy,
    ScheduleKind,
)


class SchedulePolicyFields(models.Model):
    schedule_kind = models.CharField(
        max_length=16, choices=ScheduleKind.choices, default=ScheduleKind.INTERVAL
    )
    cron = models.CharField(
        max_length=200,
        blank=True,
        default="",
        help_text="Five-field cron expression, evaluated in the agent's time zone (cron kind).",
    )
    timezone = models.CharField(
        max_length=64, default="UTC", help_text="IANA time zone of cron and active windows."
    )
    jitter_seconds = models.PositiveIntegerField(
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(JITTER_MAX)],
        help_text=f"Delay each slot by 0..N seconds, the same for a given slot (0..{JITTER_MAX}).",
    )
    active_windows = models.JSONField(
        default=list,
        blank=True,
        help_text='Slots only inside these local windows, e.g. [{"days": "mon-fri", '
        '"start": "13:30", "end": "20:00"}]; [] means always.',
    )
    overlap_policy = models.CharField(
        max_length=16, choices=OverlapPolicy.choices, default=OverlapPolicy.SKIP
    )
    catchup_policy = models.CharField(
        max_length=16, choices=CatchupPolicy.choices, default=CatchupPolicy.LATEST
    )
    catchup_window_minutes = models.PositiveIntegerField(
        default=60,
        validators=[MinValueValidator(CATCHUP_WINDOW_MIN), MaxValueValidator(CATCHUP_WINDOW_MAX)],
        help_text="With catch-up `window`: missed slots this recent still run, oldest first.",
    )
    retry_attempts = models.PositiveIntegerField(
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(RETRY_ATTEMPTS_MAX)],
        help_text=f"Retries of a failed scheduled run (0..{RETRY_ATTEMPTS_MAX}).",
    )
    retry_backoff_seconds = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(RETRY_BACKOFF_MIN), MaxValueValidator(RETRY_BACKOFF_MAX)],
        help_text="First retry delay; doubles per attempt, plus up to half of it as jitter.",
    )
    retry_on = models.CharField(
        max_length=64,
        blank=True,
        default="failed,timed_out",
        help_text="Outcomes that retry, comma-separated: failed, timed_out, abandoned.",
    )

    # The calendar and policy part of the configuration, grouped (admin fieldset, schedule code).
    SCHEDULE_FIELDS = (
        "schedule_kind",
        "cron",
        "timezone",
        "jitter_seconds",
        "active_windows",
        "overlap_policy",
        "catchup_policy",
        "catchup_window_minutes",
        "retry_attempts",
        "retry_backoff_seconds",
        "retry_on",
    )

    class Meta:
        abstract = True
