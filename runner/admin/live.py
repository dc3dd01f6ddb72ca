"""Admin pages that update themselves: a version stamp per page, polled with ETags, and the page
swapping in its changed parts (runner/static/runner/live.js).

An open page asks `/admin/runner/live/<scope>/` every RUNNER_LIVE_POLL_SECONDS whether what it
shows has changed, sending the ETag it has. Unchanged is a bodiless 304; changed, the page fetches
itself again and swaps its `data-live-region` elements, so each page is rendered by the one view
that always renders it, and works the same with JavaScript off.

What keeps a hundred open tabs cheap:
- the version is one small query (max ids, counts on indexed columns, the agent's `updated_at`,
  which every claim, finish and control request moves), and a web process reuses it for
  RUNNER_LIVE_VERSION_CACHE_SECONDS whoever asks: tabs cost the database nothing more;
- the poll carries a signed ticket the page was rendered with (valid RUNNER_LIVE_TICKET_SECONDS)
  instead of reading the session and the user: an unchanged poll touches no session or user row.
  The ticket only lets its holder learn *that* something changed; what changed comes with the
  page, which is an ordinary admin request. When the ticket expires the page fetches itself
  again and gets a new one (or, logged out, stops).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from datetime import timedelta

from django.core import signing
from django.db import connection
from django.http import HttpResponseNotModified, JsonResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import parse_etags, quote_etag
from django.views.decorators.http import require_GET

from runner.admin.display import pre
from runner.conf import conf
from runner.models import Agent, AgentState, Alert, AuditEvent, CycleRun, RunStatus

TICKET_SALT = "runner.admin.live"
TICKET_HEADER = "X-Runner-Live-Ticket"
SCOPE = re.compile(
    r"^(?:(?P<everything>agents|runs|overview)|(?P<kind>agent|run)-(?P<id>[1-9][0-9]{0,17}))$"
)
ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)


def _tables():
    return {
        "agent": Agent._meta.db_table,
        "run": CycleRun._meta.db_table,
        "event": AuditEvent._meta.db_table,
        "alert": Alert._meta.db_table,
    }


def _everything_stamp(now) -> tuple:
    """What every agent list shows depends on: agents (added, removed, any state or counter),
    runs (new ones, any leaving queued or running), audit events, alerts, and agents turning
    overdue (which only time does)."""
    t = _tables()
    overdue_before = now - timedelta(seconds=conf.RUNNER_OVERDUE_GRACE_SECONDS)
    sql = f"""
        SELECT (SELECT COUNT(*) FROM {t["agent"]}),
               (SELECT MAX(updated_at) FROM {t["agent"]}),
               (SELECT COUNT(*) FROM {t["agent"]} WHERE state = %s AND next_run < %s),
               (SELECT MAX(id) FROM {t["run"]}),
               (SELECT COUNT(*) FROM {t["run"]} WHERE status IN (%s, %s)),
               (SELECT MAX(id) FROM {t["event"]}),
               (SELECT COUNT(*) FROM {t["alert"]} WHERE closed_at IS NULL)
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [AgentState.RUNNING, overdue_before, *ACTIVE])
        return tuple(cursor.fetchone())


def _agent_stamp(agent_id) -> tuple:
    """One agent's page: the agent row, its latest run and how many are active, its latest
    event and its open alerts (each an index probe)."""
    t = _tables()
    latest_run = f"FROM {t['run']} r WHERE r.agent_id = a.id ORDER BY r.queued_at DESC, r.id DESC"
    sql = f"""
        SELECT a.updated_at,
               (SELECT r.id {latest_run} LIMIT 1),
               (SELECT r.status {latest_run} LIMIT 1),
               (SELECT COUNT(*) FROM {t["run"]} r WHERE r.agent_id = a.id AND r.status IN (%s, %s)),
               (SELECT e.id FROM {t["event"]} e WHERE e.agent_id = a.id
                ORDER BY e.created_at DESC, e.id DESC LIMIT 1),
               (SELECT COUNT(*) FROM {t["alert"]} x WHERE x.agent_id = a.id AND x.closed_at IS NULL)
        FROM {t["agent"]} a WHERE a.id = %s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*ACTIVE, agent_id])
        return tuple(cursor.fetchone() or ("gone",))


def _run_stamp(run_id) -> tuple:
    row = CycleRun.objects.filter(pk=run_id).values_list("status", "started_at", "finished_at")
    return tuple(row.first() or ("gone",))


def compute_version(scope: str, now=None) -> str:
    match = SCOPE.match(scope)
    if match["everything"]:
        stamp = _everything_stamp(now or timezone.now())
    elif match["kind"] == "agent":
        stamp = _agent_stamp(int(match["id"]))
    else:
        stamp = _run_stamp(int(match["id"]))
    return hashlib.blake2b(repr(stamp).encode(), digest_size=8).hexdigest()


class _RecentVersions:
    """Versions computed in the last RUNNER_LIVE_VERSION_CACHE_SECONDS, per scope, shared by
    every thread of this process: however many tabs poll, the database sees one query a scope."""

    def __init__(self):
        self._lock = threading.Lock()
        self._versions: dict[str, tuple[float, str]] = {}

    def get(self, scope: str) -> str:
        ttl = conf.RUNNER_LIVE_VERSION_CACHE_SECONDS
        now = time.monotonic()
        with self._lock:
            cached = self._versions.get(scope)
            if cached is not None and now - cached[0] < ttl:
                return cached[1]
        version = compute_version(scope)
        with self._lock:
            if len(self._versions) > 10_000:  # bounded: scopes name agents and runs
                self._versions.clear()
            self._versions[scope] = (now, version)
        return version


recent_versions = _RecentVersions()


def ticket_for(user) -> str:
    return signing.dumps({"u": user.pk}, salt=TICKET_SALT, compress=False)


def ticket_valid(value: str) -> bool:
    try:
        signing.loads(value, salt=TICKET_SALT, max_age=conf.RUNNER_LIVE_TICKET_SECONDS)
    except signing.BadSignature:  # tampered with, or expired
        return False
    return True


def note_version(request, scope: str):
    """Take the page's version before its view reads what it shows: a change landing while the
    page renders then makes the next poll answer "changed" rather than go unnoticed."""
    if SCOPE.match(scope):
        versions = request.__dict__.setdefault("runner_live_versions", {})
        versions.setdefault(scope, compute_version(scope))


class LivePagesMixin:
    """For a ModelAdmin whose list and object pages are live: notes each page's version first."""

    live_list_scope = ""  # "agents", "runs"
    live_object_scope = ""  # "agent", "run" (the page of one object: "agent-12")

    def changelist_view(self, request, extra_context=None):
        note_version(request, self.live_list_scope)
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        note_version(request, f"{self.live_object_scope}-{object_id}")
        return super().change_view(request, object_id, form_url, extra_context)


def page_context(request, scope: str) -> dict:
    """What the page's live element carries (the runner_live template tag renders it); empty,
    so the page stays still, where the project's URLs do not route the version view."""
    try:
        version_url = reverse("runner-live-version", kwargs={"scope": scope})
    except NoReverseMatch:
        return {}
    return {
        "scope": scope,
        "version_url": version_url,
        "version": quote_etag(
            getattr(request, "runner_live_versions", {}).get(scope) or compute_version(scope)
        ),
        "ticket": ticket_for(request.user),
        "poll_seconds": conf.RUNNER_LIVE_POLL_SECONDS,
        "server_now": timezone.now().isoformat(),
    }


def _refused(message, status):
    return JsonResponse({"detail": message}, status=status)


@require_GET
def version_view(request, scope):
    """`GET /admin/runner/live/<scope>/`: the scope's version as an ETag (304 when unchanged)."""
    if not SCOPE.match(scope):
        return _refused("Unknown live scope.", 404)
    if not ticket_valid(request.headers.get(TICKET_HEADER, "")):
        return _refused("No valid live ticket: load the page again.", 403)
    version = recent_versions.get(scope)
    etag = quote_etag(version)
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if etag in parse_etags(request.headers.get("If-None-Match", "")):
        response = HttpResponseNotModified()
        for name, value in headers.items():
            response[name] = value
        return response
    return JsonResponse(
        {"version": version, "poll_seconds": conf.RUNNER_LIVE_POLL_SECONDS}, headers=headers
    )


# --- what the live parts of a page render ----------------------------------------------------

TAIL_ON_AGENT_PAGE = 12


def elapsed_text(seconds: float) -> str:
    """ "1:03" or "2:01:03", as live.js writes it every second."""
    seconds = max(int(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{seconds:02}" if hours else f"{minutes}:{seconds:02}"


def elapsed_html(since, now=None):
    """How long a run has been going, ticking in the browser."""
    if since is None:
        return "—"
    now = now or timezone.now()
    return format_html(
        '<span class="runner-elapsed" data-elapsed-since="{}">{}</span>',
        since.isoformat(),
        elapsed_text((now - since).total_seconds()),
    )


def log_html(run, *, keep=None):
    """A run's log lines; while the run may still log, an element live.js follows through
    `/api/runs/{id}/log/` (showing the last `keep` lines, or all)."""
    lines = [str(line) for line in (run.log_lines or [])]
    if run.status not in ACTIVE:
        return pre("\n".join(lines))
    shown = lines[-keep:] if keep else lines
    return format_html(
        '<pre class="runner-pre runner-tail" id="runner-log-{}" data-log-url="{}" '
        'data-after="{}" data-keep="{}" aria-live="polite">{}</pre>',
        run.pk,
        reverse("api:run-log", kwargs={"id": run.pk}),
        len(lines),
        keep or 0,
        "\n".join(shown),
    )


def in_flight(run, now=None) -> dict | None:
    """The agent page's "in flight": the run, how long it has been going, its latest lines."""
    if run is None:
        return None
    run = CycleRun.objects.only("pk", "status", "queued_at", "started_at", "log_lines").get(
        pk=run.pk
    )
    return {
        "run": run,
        "elapsed": elapsed_html(run.started_at or run.queued_at, now),
        "log": log_html(run, keep=TAIL_ON_AGENT_PAGE),
    }
