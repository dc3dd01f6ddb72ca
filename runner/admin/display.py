"""How the admin shows runner values: moments in words, coloured badges, changes, JSON and text.

Plain functions returning safe HTML, shared by every ModelAdmin and the agent page.
"""

import json

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


def moment_html(moment, now=None):
    if moment is None:
        return "—"
    stamp = timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z")
    return format_html(
        '<span title="{}">{}</span> <span class="runner-when">({})</span>',
        moment.isoformat(),
        stamp,
        humanize_moment(moment, now),
    )


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


def changes_html(changes, limit=None):
    """{"field": {"before": a, "after": b}} as readable 'field: a → b' lines."""
    if not changes:
        return "—"

    def show(value):
        if value is None:
            return "∅"
        return short_value(value, limit) if limit else short_value(value, 10_000)

    rows = (
        (name, show(change.get("before")), show(change.get("after")))
        for name, change in sorted(changes.items())
        if isinstance(change, dict)
    )
    return format_html_join(
        mark_safe("<br>"),
        '<code>{}</code>: <span class="runner-before">{}</span> → '
        '<span class="runner-after">{}</span>',
        rows,
    )


def pre(text):
    return format_html('<pre class="runner-pre">{}</pre>', text) if text else "—"


def pretty_json(value):
    return pre(json.dumps(value, indent=2, sort_keys=True, default=str)) if value else "—"
