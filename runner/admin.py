"""The admin as the control room: configure, control and understand agents, runs and the audit trail.

Every control button, bulk action and configuration save makes one call into `runner.services`
with an admin `Actor`, so the admin can never do what the API or CLI could not, and every request,
applied or refused, leaves an audit event. Runs and audit events are read-only for everyone.
"""

import json
import uuid
from dataclasses import dataclass

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import IntegerField, OuterRef, Subquery
from django.db.models.expressions import RawSQL
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince, timeuntil

from runner import registry, selectors, services
from runner.actors import Actor
from runner.bigtables import EstimatedCountPaginator, ProbedDatesQuerySet
from runner.errors import RunnerError
from runner.models import (
    FINISHED_STATUSES,
    INTERVAL_MAX,
    INTERVAL_MIN,
    Agent,
    AgentState,
    AuditAction,
    AuditEvent,
    AuditSource,
    CycleRun,
    RunStatus,
    RunTrigger,
)

# The changelist's success rate looks at this many of each agent's latest finished runs.
RECENT_RUNS_FOR_RATE = 20
# How many runs and audit events the agent page lists.
RECENT_ON_PAGE = 10
REPORT_URL_NAMES = ("runner-agent-report", "admin:runner-agent-report")
RUN_HEAVY_FIELDS = ("log_lines", "traceback", "config_snapshot", "summary")


# --- shared helpers -------------------------------------------------------------------------------


def admin_actor(request) -> Actor:
    """The logged-in user, as seen by the audit trail: source admin, client IP and a request id."""
    request_id = request.headers.get("X-Request-ID", "")[:64] or uuid.uuid4().hex
    return Actor.for_user(
        request.user,
        source=AuditSource.ADMIN,
        client_ip=request.META.get("REMOTE_ADDR") or None,
        request_id=request_id,
    )


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


def related_record_links(request, obj, admin_site):
    """Every model with a ForeignKey to obj's model: how many rows point at obj, linked if we can.

    Found through `_meta.related_objects`, so records of apps this app never imports (the agents'
    forecasts, decisions, positions) appear on a run once their app registers an admin for them.
    """
    links = []
    # include_hidden: foreign keys declared with related_name="+" still point at the run
    for rel in obj._meta.get_fields(include_hidden=True):
        if not (rel.auto_created and not rel.concrete and (rel.one_to_many or rel.one_to_one)):
            continue
        model = rel.related_model
        lookup = f"{rel.field.name}__{rel.field.target_field.name}__exact"
        value = getattr(obj, rel.field.target_field.attname)
        count = model._default_manager.filter(**{lookup: value}).count()
        label = model._meta.verbose_name if count == 1 else model._meta.verbose_name_plural
        model_admin = admin_site._registry.get(model)
        url = None
        if model_admin is not None and model_admin.has_view_permission(request):
            opts = model._meta
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
            url = f"{url}?{lookup}={value}"
        links.append({"label": f"{model._meta.app_label}: {label}", "count": count, "url": url})
    return links


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """Viewable by whoever has the view permission; nobody (superusers included) adds, edits or deletes."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- agents -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Control:
    verb: str
    label: str
    done: str
    audit_action: str


CONTROLS = {
    "start": Control("start", "Start", "started", AuditAction.START),
    "stop": Control("stop", "Stop", "stopped", AuditAction.STOP),
    "pause": Control("pause", "Pause", "paused", AuditAction.PAUSE),
    "resume": Control("resume", "Resume", "resumed", AuditAction.RESUME),
    "run_once": Control("run_once", "Run once", "queued a run", AuditAction.RUN_ONCE),
    "set_interval": Control("set_interval", "Set interval", "re-timed", AuditAction.SET_INTERVAL),
}
BULK_ACTIONS = {
    "start_agents": "start",
    "stop_agents": "stop",
    "pause_agents": "pause",
    "resume_agents": "resume",
}
PERMISSION_REFUSAL = "Permission denied: controlling agents needs runner.control_agent."
STATE_SERVICES = {
    "start": services.agent_start,
    "stop": services.agent_stop,
    "pause": services.agent_pause,
    "resume": services.agent_resume,
}


def cycle_in_flight(agent):
    """The run that makes run-once refuse (the same rule as services.agent_run_once), or None."""
    return (
        CycleRun.objects.filter(agent=agent, status__in=[RunStatus.RUNNING, RunStatus.QUEUED])
        .exclude(trigger=RunTrigger.SCHEDULE, status=RunStatus.QUEUED)
        .only("pk", "status")
        .order_by("-id")
        .first()
    )


def allowed_controls(agent, *, in_flight):
    """The buttons that would be applied right now: transitions allowed from the agent's state."""
    verbs = [
        verb
        for verb in STATE_SERVICES
        if agent.state in services.ALLOWED_FROM[CONTROLS[verb].audit_action]
    ]
    if in_flight is None:
        verbs.append("run_once")
    return [CONTROLS[verb] for verb in verbs]


def _recent_runs_count(*, succeeded_only):
    """How many of the agent's latest finished runs (at most RECENT_RUNS_FOR_RATE) [succeeded].

    A correlated subquery over a LIMITed derived table: for each agent the database walks the
    (agent, queued_at) index backwards and stops after the window, however many runs there are.
    The ORM cannot count a sliced correlated subquery, hence RawSQL (portable SQL, PostgreSQL
    and SQLite alike).
    """
    statuses = list(FINISHED_STATUSES)
    placeholders = ", ".join(["%s"] * len(statuses))
    runs, agents = CycleRun._meta.db_table, Agent._meta.db_table
    sql = (
        f"SELECT COUNT(*) FROM (SELECT r.status FROM {runs} r "
        f"WHERE r.agent_id = {agents}.id AND r.status IN ({placeholders}) "
        f"ORDER BY r.queued_at DESC, r.id DESC LIMIT %s) recent"
    )
    params = [*statuses, RECENT_RUNS_FOR_RATE]
    if succeeded_only:
        sql += " WHERE recent.status = %s"
        params.append(RunStatus.SUCCEEDED)
    return RawSQL(sql, params, output_field=IntegerField())


def annotate_recent_outcomes(queryset):
    """Last outcome and success over the latest finished runs, in the agents query itself:
    one query for the whole changelist page however many runs there are."""
    # Agent.last_run is the start of the agent's last cycle, so the last run is found by an
    # equality lookup on the (agent, started_at) index.
    last = CycleRun.objects.filter(agent=OuterRef("pk"), started_at=OuterRef("last_run")).values(
        "status"
    )[:1]
    return queryset.annotate(
        recent_finished=_recent_runs_count(succeeded_only=False),
        recent_succeeded=_recent_runs_count(succeeded_only=True),
        last_outcome=Subquery(last),
    )


class AgentAdminForm(forms.ModelForm):
    audit_reason = forms.CharField(
        label="Reason for this change",
        required=False,
        max_length=1000,
        widget=forms.TextInput(attrs={"size": 60}),
        help_text="Optional; kept in the audit trail with the before/after of what you changed.",
    )

    class Meta:
        model = Agent
        fields = ["slug", *Agent.CONFIG_FIELDS]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "kind" in self.fields:
            kinds = sorted(registry.agent_kinds())
            current = self.instance.kind if self.instance and self.instance.kind else None
            if current and current not in kinds:
                kinds.append(current)
            self.fields["kind"].widget = forms.Select(choices=[(k, k) for k in kinds])
        if "interval_minutes" in self.fields:
            self.fields["interval_minutes"].widget.attrs.update(
                {"min": INTERVAL_MIN, "max": INTERVAL_MAX}
            )


STATE_FIELDS = (
    "state",
    "next_run",
    "paused_next_run",
    "last_run",
    "last_success",
    "last_error",
    "run_count",
    "success_count",
    "error_count",
    "consecutive_failures",
    "created_at",
    "updated_at",
)


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    form = AgentAdminForm
    change_form_template = "admin/runner/agent/change_form.html"
    list_display = (
        "slug",
        "name",
        "kind",
        "state_badge",
        "next_run_display",
        "last_outcome_display",
        "success_rate_display",
        "interval_minutes",
        "trading_mode",
    )
    list_display_links = ("slug", "name")
    list_filter = ("state", "kind", "trading_mode")
    search_fields = ("slug", "name")
    readonly_fields = STATE_FIELDS
    actions = ["start_agents", "stop_agents", "pause_agents", "resume_agents"]

    class Media:
        css = {"all": ("runner/admin.css",)}

    # -- permissions and querysets --

    def has_control_permission(self, request, obj=None):
        return request.user.has_perm("runner.control_agent")

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        match = getattr(request, "resolver_match", None)
        if match is not None and match.url_name == "runner_agent_changelist":
            queryset = annotate_recent_outcomes(queryset)  # only the list shows them
        return queryset

    def get_actions(self, request):
        actions = super().get_actions(request)
        # A bulk delete would skip the service's per-agent refusal; agents are deleted one by one.
        actions.pop("delete_selected", None)
        return actions

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields.append("slug")  # the slug is an identity in URLs, the CLI and the audit trail
        return fields

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (None, {"fields": ("slug", "name", "kind", "parameters")}),
            (
                "Schedule and limits",
                {
                    "fields": (
                        "interval_minutes",
                        "timeout_seconds",
                        "max_consecutive_failures",
                        "trading_mode",
                    )
                },
            ),
        ]
        can_edit = (
            self.has_change_permission(request, obj)
            if obj is not None
            else self.has_add_permission(request)
        )
        if can_edit:
            fieldsets.append(("Audit", {"fields": ("audit_reason",)}))
        if obj is not None:
            fieldsets.append(
                (
                    "Runner state (read-only; changed only by the controls above)",
                    {"classes": ("collapse",), "fields": STATE_FIELDS},
                )
            )
        return fieldsets

    # -- changelist columns --

    @admin.display(description="State", ordering="state")
    def state_badge(self, agent):
        return badge(agent.state, agent.get_state_display(), "state")

    @admin.display(description="Next run", ordering="next_run")
    def next_run_display(self, agent):
        if agent.next_run is None and agent.state == AgentState.PAUSED and agent.paused_next_run:
            return format_html("held: {}", humanize_moment(agent.paused_next_run))
        return humanize_moment(agent.next_run) or "—"

    @admin.display(description="Last outcome")
    def last_outcome_display(self, agent):
        return run_status_badge(getattr(agent, "last_outcome", None))

    @admin.display(description=f"Success (last {RECENT_RUNS_FOR_RATE})")
    def success_rate_display(self, agent):
        finished = getattr(agent, "recent_finished", 0)
        if not finished:
            return "—"
        succeeded = agent.recent_succeeded
        return f"{round(100 * succeeded / finished)}% ({succeeded}/{finished})"

    # -- bulk actions: one service call per agent, applied and refused reported per agent --

    def _bulk_control(self, request, queryset, verb):
        control = CONTROLS[verb]
        service = STATE_SERVICES[verb]
        actor = admin_actor(request)
        applied, refused = [], []
        for agent in queryset.order_by("slug"):
            try:
                service(agent=agent, actor=actor)
            except RunnerError as exc:
                refused.append(f"{agent.slug} ({exc.message})")
            else:
                applied.append(agent.slug)
        if applied:
            self.message_user(
                request,
                f"{control.label}: applied to {len(applied)} agent(s): {', '.join(applied)}.",
                messages.SUCCESS,
            )
        if refused:
            self.message_user(
                request,
                f"{control.label}: refused for {len(refused)} agent(s): {'; '.join(refused)}.",
                messages.WARNING,
            )

    def changelist_view(self, request, extra_context=None):
        """A bulk control POST from someone without the control permission is refused and audited."""
        verb = (
            BULK_ACTIONS.get(request.POST.get("action", "")) if request.method == "POST" else None
        )
        if verb is not None and not self.has_control_permission(request):
            selected = [
                value
                for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
                if value.isdigit()
            ]
            actor = admin_actor(request)
            for agent in Agent.objects.filter(pk__in=selected):
                services.control_refused(
                    agent=agent,
                    action=CONTROLS[verb].audit_action,
                    actor=actor,
                    message=PERMISSION_REFUSAL,
                )
            raise PermissionDenied
        return super().changelist_view(request, extra_context)

    @admin.action(permissions=["control"], description="Start selected agents")
    def start_agents(self, request, queryset):
        self._bulk_control(request, queryset, "start")

    @admin.action(permissions=["control"], description="Stop selected agents")
    def stop_agents(self, request, queryset):
        self._bulk_control(request, queryset, "stop")

    @admin.action(permissions=["control"], description="Pause selected agents")
    def pause_agents(self, request, queryset):
        self._bulk_control(request, queryset, "pause")

    @admin.action(permissions=["control"], description="Resume selected agents")
    def resume_agents(self, request, queryset):
        self._bulk_control(request, queryset, "resume")

    # -- the control buttons on the change page --

    def get_urls(self):
        control = path(
            "<path:object_id>/control/",
            self.admin_site.admin_view(self.control_view),
            name="runner_agent_control",
        )
        return [control, *super().get_urls()]

    def control_view(self, request, object_id):
        """POST only: apply one control verb through its service, then back to the agent page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        agent = self.get_object(request, unquote(object_id))
        if agent is None:
            raise Http404("No agent with that id.")
        change_url = reverse("admin:runner_agent_change", args=[agent.pk])
        control = CONTROLS.get(request.POST.get("action", ""))
        if control is None:
            choices = ", ".join(CONTROLS)
            self.message_user(
                request, f"Unknown control action (use one of: {choices}).", messages.ERROR
            )
            return HttpResponseRedirect(change_url)
        reason = request.POST.get("reason", "").strip()
        actor = admin_actor(request)
        if not self.has_control_permission(request, agent):
            services.control_refused(
                agent=agent,
                action=control.audit_action,
                actor=actor,
                message=PERMISSION_REFUSAL,
                reason=reason,
            )
            raise PermissionDenied
        try:
            if control.verb == "run_once":
                run = services.agent_run_once(agent=agent, actor=actor, reason=reason)
                run_url = reverse("admin:runner_cyclerun_change", args=[run.pk])
                message = format_html(
                    'Run <a href="{}">#{}</a> queued for {}; a worker picks it up shortly.',
                    run_url,
                    run.pk,
                    agent.slug,
                )
            elif control.verb == "set_interval":
                services.agent_set_interval(
                    agent=agent,
                    interval_minutes=request.POST.get("interval_minutes"),
                    actor=actor,
                    reason=reason,
                )
                message = f"Interval of {agent.slug} set to {agent.interval_minutes} minutes."
            else:
                STATE_SERVICES[control.verb](agent=agent, actor=actor, reason=reason)
                message = (
                    f"Agent {agent.slug} {control.done} (now {agent.get_state_display().lower()})."
                )
        except RunnerError as exc:
            self.message_user(request, f"{control.label} refused: {exc.message}", messages.ERROR)
        else:
            self.message_user(request, message, messages.SUCCESS)
        return HttpResponseRedirect(change_url)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        agent = self.get_object(request, unquote(object_id))
        if agent is not None and self.has_view_or_change_permission(request, agent):
            extra_context = {**(extra_context or {}), **self.control_room(request, agent)}
        return super().change_view(request, object_id, form_url, extra_context)

    def control_room(self, request, agent):
        """What the agent page shows above the form: state, timings, counters, buttons, history."""
        status = selectors.agent_status(agent)  # settles expired leases first, as any status read
        now = timezone.now()
        in_flight = cycle_in_flight(agent)
        can_control = self.has_control_permission(request, agent)
        last_run = (
            CycleRun.objects.filter(agent=agent, started_at=agent.last_run)
            .defer(*RUN_HEAVY_FIELDS)
            .order_by("-id")
            .first()
            if agent.last_run
            else None
        )
        recent_runs = list(
            CycleRun.objects.filter(agent=agent)
            .defer(*RUN_HEAVY_FIELDS)
            .select_related("requested_by")
            .order_by("-queued_at", "-id")[:RECENT_ON_PAGE]
        )
        recent_events = list(AuditEvent.objects.filter(agent_id=agent.pk)[:RECENT_ON_PAGE])
        return {
            "runner": {
                "status": status,
                "state_badge": badge(agent.state, agent.get_state_display(), "state"),
                "next_run": moment_html(agent.next_run, now),
                "paused_next_run": moment_html(agent.paused_next_run, now)
                if agent.paused_next_run
                else None,
                "last_run": moment_html(agent.last_run, now),
                "last_run_record": last_run,
                "last_run_badge": run_status_badge(last_run.status) if last_run else "—",
                "last_success": moment_html(agent.last_success, now),
                "in_flight": in_flight,
                "can_control": can_control,
                "controls": allowed_controls(agent, in_flight=in_flight) if can_control else [],
                "interval_min": INTERVAL_MIN,
                "interval_max": INTERVAL_MAX,
                "recent_runs": [
                    {
                        "run": run,
                        "badge": run_status_badge(run.status),
                        "when": moment_html(run.started_at or run.queued_at, now),
                    }
                    for run in recent_runs
                ],
                "recent_events": [
                    {
                        "event": event,
                        "badge": badge(event.outcome, event.get_outcome_display(), "outcome"),
                        "changes": changes_html(event.changes, limit=60),
                        "when": moment_html(event.created_at, now),
                    }
                    for event in recent_events
                ],
                "runs_url": reverse("admin:runner_cyclerun_changelist")
                + f"?agent__id__exact={agent.pk}",
                "events_url": reverse("admin:runner_auditevent_changelist")
                + f"?agent__id__exact={agent.pk}",
                "report_url": report_url(agent),
            }
        }

    # -- configuration writes go through the services (audited with before/after) --

    def save_model(self, request, obj, form, change):
        actor = admin_actor(request)
        reason = form.cleaned_data.get("audit_reason", "")
        try:
            if change:
                values = {
                    name: getattr(obj, name)
                    for name in form.changed_data
                    if name in Agent.CONFIG_FIELDS
                }
                if values:
                    services.agent_update_config(
                        agent=obj, values=values, actor=actor, reason=reason
                    )
            else:
                values = {name: getattr(obj, name) for name in ("slug", *Agent.CONFIG_FIELDS)}
                created = services.agent_create(values=values, actor=actor, reason=reason)
                for field in Agent._meta.concrete_fields:
                    setattr(obj, field.attname, getattr(created, field.attname))
                obj._state.adding = False
                obj._state.db = created._state.db
        except RunnerError as exc:
            request._runner_refusal = exc

    def delete_model(self, request, obj):
        try:
            services.agent_delete(agent=obj, actor=admin_actor(request))
        except RunnerError as exc:
            request._runner_refusal = exc
        else:
            super().log_deletions(request, [obj])

    def delete_queryset(self, request, queryset):
        for agent in queryset:
            self.delete_model(request, agent)

    def log_deletions(self, request, queryset):
        """Logged by delete_model only once the service has really deleted the agent."""

    def log_addition(self, request, obj, message):
        if not hasattr(request, "_runner_refusal"):
            return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        if not hasattr(request, "_runner_refusal"):
            return super().log_change(request, obj, message)

    def _refused_response(self, request, what, url):
        exc = request._runner_refusal
        self.message_user(request, f"{what} refused: {exc.message}", messages.ERROR)
        return HttpResponseRedirect(url)

    def response_add(self, request, obj, post_url_continue=None):
        if hasattr(request, "_runner_refusal"):
            return self._refused_response(request, "Create", reverse("admin:runner_agent_add"))
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        if hasattr(request, "_runner_refusal"):
            url = reverse("admin:runner_agent_change", args=[obj.pk])
            return self._refused_response(request, "Change", url)
        return super().response_change(request, obj)

    def response_delete(self, request, obj_display, obj_id):
        if hasattr(request, "_runner_refusal"):
            url = reverse("admin:runner_agent_change", args=[obj_id])
            return self._refused_response(request, "Delete", url)
        return super().response_delete(request, obj_display, obj_id)

    def get_deleted_objects(self, objs, request):
        """Summarise instead of listing every run (an agent may have a million); events stay."""
        runs = CycleRun.objects.filter(agent__in=objs).count()
        listed = [f"Agent: {obj}" for obj in objs] + [
            f"{runs} cycle run(s) of {'these agents' if len(objs) > 1 else 'this agent'}"
        ]
        return listed, {"agents": len(objs), "cycle runs": runs}, set(), []


def report_url(agent):
    """The agent's report page, when the reports app provides one (so the link appears once merged)."""
    for name in REPORT_URL_NAMES:
        try:
            return reverse(name, kwargs={"agent_id": agent.pk})
        except NoReverseMatch:
            continue
    return None


# --- cycle runs -----------------------------------------------------------------------------------


@admin.register(CycleRun)
class CycleRunAdmin(ReadOnlyModelAdmin):
    change_form_template = "admin/runner/related_records_change_form.html"
    list_display = (
        "id",
        "agent",
        "status_badge",
        "trigger",
        "requested_by",
        "queued_at",
        "started_at",
        "duration",
        "error_short",
    )
    list_display_links = ("id",)
    list_filter = ("agent", "status", "trigger")
    date_hierarchy = "started_at"
    search_fields = ("error_message", "error_type")
    search_help_text = "Search the error type and message."
    list_select_related = ("agent", "requested_by")
    ordering = ("-id",)  # the primary key index: newest first without sorting a big table
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would count the whole table
    paginator = EstimatedCountPaginator
    fieldsets = (
        (
            "Run",
            {
                "fields": (
                    "agent",
                    "status",
                    "trigger",
                    "requested_by",
                    "control_event",
                    "slot",
                    "missed_slots",
                    "trading_mode",
                    "worker",
                    "task_id",
                )
            },
        ),
        (
            "Timing",
            {
                "fields": (
                    "queued_at",
                    "started_at",
                    "finished_at",
                    "duration_ms",
                    "deadline_at",
                    "cancel_requested",
                )
            },
        ),
        (
            "Outcome",
            {"fields": ("summary_display", "error_type", "error_message", "traceback_display")},
        ),
        ("Log", {"fields": ("log_display",)}),
        (
            "Internals",
            {
                "classes": ("collapse",),
                "fields": ("config_display", "fencing_token", "lease_expires_at", "heartbeat_at"),
            },
        ),
    )

    class Media:
        css = {"all": ("runner/admin.css",)}

    def get_queryset(self, request):
        queryset = ProbedDatesQuerySet.wrap(super().get_queryset(request))
        match = getattr(request, "resolver_match", None)
        if match is not None and match.url_name == "runner_cyclerun_changelist":
            queryset = queryset.defer(*RUN_HEAVY_FIELDS)  # the list never shows them
        return queryset

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, unquote(object_id))
        if run is not None and self.has_view_permission(request, run):
            extra_context = {
                **(extra_context or {}),
                "related_records": related_record_links(request, run, self.admin_site),
                "related_records_title": "Records of this run",
            }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="Status", ordering="status")
    def status_badge(self, run):
        return run_status_badge(run.status)

    @admin.display(description="Duration", ordering="duration_ms")
    def duration(self, run):
        if run.duration_ms is None:
            return "—"
        return (
            f"{run.duration_ms / 1000:.1f} s" if run.duration_ms >= 100 else f"{run.duration_ms} ms"
        )

    @admin.display(description="Error")
    def error_short(self, run):
        text = ": ".join(part for part in (run.error_type, run.error_message) if part)
        return short_value(text, 80) if text else "—"

    @admin.display(description="Summary")
    def summary_display(self, run):
        return pretty_json(run.summary)

    @admin.display(description="Traceback")
    def traceback_display(self, run):
        return pre(run.traceback)

    @admin.display(description="Log lines")
    def log_display(self, run):
        return pre("\n".join(str(line) for line in run.log_lines or []))

    @admin.display(description="Configuration it ran with")
    def config_display(self, run):
        return pretty_json(run.config_snapshot)


# --- audit events ---------------------------------------------------------------------------------


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyModelAdmin):
    change_form_template = "admin/runner/related_records_change_form.html"
    list_display = (
        "created_at",
        "agent_slug",
        "action",
        "outcome_badge",
        "actor_display",
        "source",
        "transition",
        "changes_display",
        "reason",
    )
    list_display_links = ("created_at",)
    list_filter = ("agent", "action", "actor", "source", "outcome")
    date_hierarchy = "created_at"
    search_fields = ("agent_slug", "actor_username", "reason", "refusal_reason")
    ordering = ("-created_at", "-id")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would count the whole table
    paginator = EstimatedCountPaginator
    fieldsets = (
        (
            "Request",
            {
                "fields": (
                    "created_at",
                    "agent",
                    "agent_slug",
                    "action",
                    "outcome",
                    "refusal_reason",
                    "reason",
                )
            },
        ),
        ("Effect", {"fields": ("state_before", "state_after", "changes_full")}),
        (
            "Who and where",
            {"fields": ("actor", "actor_username", "source", "client_ip", "request_id")},
        ),
    )

    class Media:
        css = {"all": ("runner/admin.css",)}

    def get_queryset(self, request):
        return ProbedDatesQuerySet.wrap(super().get_queryset(request))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        event = self.get_object(request, unquote(object_id))
        if event is not None and self.has_view_permission(request, event):
            extra_context = {
                **(extra_context or {}),
                "related_records": related_record_links(request, event, self.admin_site),
                "related_records_title": "Caused by this event",
            }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="Outcome", ordering="outcome")
    def outcome_badge(self, event):
        shown = badge(event.outcome, event.get_outcome_display(), "outcome")
        if event.refusal_reason:
            return format_html(
                '{}<br><span class="runner-when">{}</span>', shown, event.refusal_reason
            )
        return shown

    @admin.display(description="Actor", ordering="actor_username")
    def actor_display(self, event):
        return event.actor_username or "—"

    @admin.display(description="State")
    def transition(self, event):
        if not event.state_before and not event.state_after:
            return "—"
        if event.state_before == event.state_after:
            return event.state_after
        return format_html(
            '<span class="runner-nowrap">{} → {}</span>',
            event.state_before or "∅",
            event.state_after or "∅",
        )

    @admin.display(description="Changes")
    def changes_display(self, event):
        return changes_html(event.changes, limit=60)

    @admin.display(description="Changes (before → after)")
    def changes_full(self, event):
        return changes_html(event.changes)
