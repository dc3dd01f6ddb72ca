"""Agents in the admin: the list, the configuration form, and the agent page as a control room.

Configuration saves, creation and deletion each make one service call with an admin actor, so
the admin can never do what the API or CLI could not, and every request, applied or refused
(the user's missing permission included), leaves an audit event.
"""

from django.contrib import admin, messages
from django.contrib.admin.options import csrf_protect_m
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.utils.html import format_html

from runner import services
from runner.admin.agent_controls import AgentControlsMixin, admin_actor
from runner.admin.agent_form import AgentAdminForm
from runner.admin.agent_list import RECENT_RUNS_FOR_RATE, annotate_recent_outcomes
from runner.admin.agent_page import control_room
from runner.admin.display import badge, relative_html, run_status_badge
from runner.admin.live import LivePagesMixin, elapsed_html, note_version
from runner.errors import RunnerError
from runner.models import Agent, AgentState, AuditAction, CycleRun

STATE_FIELDS = (*Agent.STATE_FIELDS, "paused_next_run", "created_at", "updated_at")


@admin.register(Agent)
class AgentAdmin(LivePagesMixin, AgentControlsMixin, admin.ModelAdmin):
    live_list_scope, live_object_scope = "agents", "agent"
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
            ("Calendar and run policies", {"fields": Agent.SCHEDULE_FIELDS}),
            (
                "Budgets per day ({} means none; a spent budget pauses the agent until the day ends)",
                {"fields": ("budgets",)},
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
        if agent.state == AgentState.PAUSED and agent.paused_until:
            return format_html("resumes {}", relative_html(agent.paused_until))
        if agent.next_run is None and agent.state == AgentState.PAUSED and agent.paused_next_run:
            return format_html("held: {}", relative_html(agent.paused_next_run))
        return relative_html(agent.next_run) or "—"

    @admin.display(description="Last outcome")
    def last_outcome_display(self, agent):
        running_since = getattr(agent, "running_since", None)
        if running_since is not None:  # the run in flight, and for how long
            return format_html("{} {}", run_status_badge("running"), elapsed_html(running_since))
        return run_status_badge(getattr(agent, "last_outcome", None))

    @admin.display(description=f"Success (last {RECENT_RUNS_FOR_RATE})")
    def success_rate_display(self, agent):
        finished = getattr(agent, "recent_finished", 0)
        if not finished:
            return "—"
        succeeded = agent.recent_succeeded
        return f"{round(100 * succeeded / finished)}% ({succeeded}/{finished})"

    # -- the agent page --

    def change_view(self, request, object_id, form_url="", extra_context=None):
        note_version(request, f"agent-{object_id}")  # before the page reads what it shows
        agent = self.get_object(request, unquote(object_id))
        if agent is not None and self.has_view_or_change_permission(request, agent):
            runner = control_room(agent, can_control=self.has_control_permission(request, agent))
            extra_context = {**(extra_context or {}), "runner": runner}
        return super().change_view(request, object_id, form_url, extra_context)

    # -- configuration writes go through the services (audited with before/after) --
    #
    # The admin normally wraps a POST in one transaction; here every write is a service call with
    # its own, which commits a refusal's audit event before raising. So these views run without
    # the outer transaction, and a refusal becomes an error message instead of a rolled-back 500.

    @csrf_protect_m
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        what = "Change" if object_id else "Create"
        action = AuditAction.CONFIGURE if object_id else AuditAction.CREATE
        try:
            return self._changeform_view(request, object_id, form_url, extra_context)
        except PermissionDenied:
            self._audit_denied(request, object_id, action)
            raise
        except RunnerError as exc:
            self.message_user(request, f"{what} refused: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    @csrf_protect_m
    def delete_view(self, request, object_id, extra_context=None):
        try:
            return self._delete_view(request, object_id, extra_context)
        except PermissionDenied:
            self._audit_denied(request, object_id, AuditAction.DELETE)
            raise
        except RunnerError as exc:
            self.message_user(request, f"Delete refused: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def _audit_denied(self, request, object_id, action):
        """A configuration POST by a user without the permission: refused, and audited."""
        if request.method != "POST":
            return
        agent = Agent.objects.filter(pk=unquote(object_id)).first() if object_id else None
        needed = {
            AuditAction.CREATE: "runner.add_agent",
            AuditAction.CONFIGURE: "runner.change_agent",
            AuditAction.DELETE: "runner.delete_agent",
        }[action]
        services.control_refused(
            agent=agent,
            agent_slug=None if agent is not None else request.POST.get("slug", ""),
            action=action,
            actor=admin_actor(request),
            message=f"Permission denied: {needed} is required.",
            reason=request.POST.get("audit_reason", ""),
        )

    def save_model(self, request, obj, form, change):
        actor = admin_actor(request)
        reason = form.cleaned_data.get("audit_reason", "")
        if change:
            values = {
                name: getattr(obj, name)
                for name in form.changed_data
                if name in Agent.CONFIG_FIELDS
            }
            if values:
                services.agent_update_config(agent=obj, values=values, actor=actor, reason=reason)
            return
        values = {name: getattr(obj, name) for name in ("slug", *Agent.CONFIG_FIELDS)}
        created = services.agent_create(values=values, actor=actor, reason=reason)
        for field in Agent._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding = False
        obj._state.db = created._state.db

    def delete_model(self, request, obj):
        services.agent_delete(agent=obj, actor=admin_actor(request))
        super().log_deletions(request, [obj])  # only once the service has really deleted it

    def log_deletions(self, request, queryset):
        """Logged by delete_model, after the service's delete (Django logs before deleting)."""

    def get_deleted_objects(self, objs, request):
        """Summarise instead of listing every run (an agent may have a million); events stay."""
        runs = CycleRun.objects.filter(agent__in=objs).count()
        listed = [f"Agent: {obj}" for obj in objs] + [
            f"{runs} cycle run(s) of {'these agents' if len(objs) > 1 else 'this agent'}"
        ]
        return listed, {"agents": len(objs), "cycle runs": runs}, set(), []
