"""How the admin shows runner values: moments in words, coloured badges, changes, JSON and text.

Plain functions returning safe HTML, shared by every ModelAdmin and the agent page.
"""

import json

from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince, timeuntil

from runner.models import RunStatus


def humanize_moment(moment, now=None):
    """'in 12 minutes', '3 hours ago', 'now': how far a moment is from now, in words."""
    if moment is None:
        return ""
    now = now or timezone.now()
    if abs((moment - now).total_seconds()) < 60:
        return "now" if moment >= now else "just now"
    if moment > now:
        return f"in {timeuntil(moment, now, depth=1)}"
    return f"{timesince(moment, now, depth=1)} ago"


# Every time the admin shows: local time to the second, with its zone ("2026-11-23 20:42:51 UTC").
MOMENT_FORMAT = "%Y-%m-%d %H:%M:%S %Z"


def stamp_html(moment):
    """The moment in MOMENT_FORMAT, its ISO form as the title. In a narrow column it may wrap
    between the date and the time, never inside either."""
    if moment is None:
        return "—"
    day, _, time = timezone.localtime(moment).strftime(MOMENT_FORMAT).partition(" ")
    return format_html(
        '<span class="runner-stamp" title="{}"><span>{}</span> <span>{}</span></span>',
        moment.isoformat(),
        day,
        time,
    )


def relative_html(moment, now=None):
    """'in 12 minutes', as humanize_moment, and counting on a live page (live.js)."""
    if moment is None:
        return ""
    return format_html(
        '<span data-relative-to="{}">{}</span>', moment.isoformat(), humanize_moment(moment, now)
    )


def moment_html(moment, now=None):
    """The stamp, then how far it is from now: "2026-11-23 20:42:51 UTC (3 minutes ago)"; on a
    live page the second part keeps counting (runner/static/runner/live.js)."""
    if moment is None:
        return "—"
    return format_html(
        '{} <span class="runner-when" data-relative-to="{}">({})</span>',
        stamp_html(moment),
        moment.isoformat(),
        humanize_moment(moment, now),
    )


def moment_column(field, description):
    """A ModelAdmin column or read-only field showing a datetime field as its stamp, sorted by
    that field: `queued_at_display = moment_column("queued_at", "Queued at")`."""

    @admin.display(description=description, ordering=field)
    def column(model_admin, obj):
        return stamp_html(getattr(obj, field))

    return column


def badge(value, label, family):
    """A coloured label, e.g. the agent state or a run status (colours live in runner/admin.css)."""
    if not value:
        return "—"
    return format_html(
        '<span class="runner-badge runner-{}-{}">{}</span>', family, value, label or value
    )


def run_status_badge(status):
    return badge(status, RunStatus(status).label if status in RunStatus.values else status, "run")


def short_value(value, limit=80):
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_text_html(text, limit):
    """Free text (a reason) cut to `limit` characters, the whole of it in the title; it breaks
    anywhere rather than widen its column."""
    if not text:
        return "—"
    shown = short_value(text, limit)
    if shown == text:
        return format_html('<span class="runner-long">{}</span>', text)
    return format_html('<span class="runner-long" title="{}">{}</span>', text, shown)


def _change_rows(changes, limit):
    def show(value):
        if value is None:
            return "∅"
        return short_value(value, limit) if limit else short_value(value, 10_000)

    return [
        (name, show(change.get("before")), show(change.get("after")))
        for name, change in sorted(changes.items())
        if isinstance(change, dict)
    ]


def changes_html(changes, limit=None):
    """{"field": {"before": a, "after": b}} as readable 'field: a → b' lines."""
    if not changes:
        return "—"
    return format_html_join(
        mark_safe("<br>"),
        '<code>{}</code>: <span class="runner-before">{}</span> → '
        '<span class="runner-after">{}</span>',
        _change_rows(changes, limit),
    )


def changes_column_html(changes, limit):
    """changes_html cut to `limit` characters a value, breaking anywhere rather than widen its
    column; every change in full in the title."""
    if not changes:
        return "—"
    full = "\n".join(
        f"{name}: {before} → {after}" for name, before, after in _change_rows(changes, None)
    )
    return format_html(
        '<span class="runner-long" title="{}">{}</span>', full, changes_html(changes, limit)
    )


def pre(text):
    return format_html('<pre class="runner-pre">{}</pre>', text) if text else "—"


def pretty_json(value):
    return pre(json.dumps(value, indent=2, sort_keys=True, default=str)) if value else "—"


VERSIONS_URL_NAME = "runner-agent-versions"


def agent_page_url(agent_id, *names):
    """The first of the named pages of an agent (report, versions) that the URLs wire, or None."""
    for name in names:
        try:
            return reverse(name, kwargs={"agent_id": agent_id})
        except NoReverseMatch:
            continue
    return None
