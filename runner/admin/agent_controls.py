"""The agent page's control buttons and the agents list's bulk actions.

Each reduces to the same ladder as the API and the CLI: read the input, build the actor from the
request, make one service call, show its outcome (or its refusal) as a message. Which buttons
show is the services' own rule (`services.allowed_controls`).
"""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from runner import services
from runner.actors import Actor
from runner.admin.agent_page import CONTROLS
from runner.admin.agent_schedule import run_once_parameters
from runner.errors import RunnerError
from runner.models import Agent, AuditSource

BULK_ACTIONS = {
    "start_agents": "start",
    "stop_agents": "stop",
    "pause_agents": "pause",
    "resume_agents": "resume",
}
PERMISSION_REFUSAL = "Permission denied: controlling agents needs runner.control_agent."


def admin_actor(request) -> Actor:
    return Actor.from_request(request, source=AuditSource.ADMIN)


class AgentControlsMixin:
    """Control buttons (a POST view beside the change page) and bulk actions for AgentAdmin."""

    def has_control_permission(self, request, obj=None):
        return request.user.has_perm("runner.control_agent")

    # -- bulk actions: one service call per agent, applied and refused reported per agent --

    def _bulk_control(self, request, queryset, verb):
        control = CONTROLS[verb]
        actor = admin_actor(request)
        applied, refused = [], []
        for agent in queryset.order_by("slug"):
            try:
                services.TRANSITIONS[verb](agent=agent, actor=actor)
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
                if value.isascii() and value.isdigit()
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
            message = self._apply_control(request, agent, control, actor=actor, reason=reason)
        except RunnerError as exc:
            self.message_user(request, f"{control.label} refused: {exc.message}", messages.ERROR)
        else:
            self.message_user(request, message, messages.SUCCESS)
        return HttpResponseRedirect(change_url)

    def _apply_control(self, request, agent, control, *, actor, reason):
        """One service call; returns the message that says what happened."""
        if control.verb == "run_once":
            run = services.agent_run_once(
                agent=agent,
                actor=actor,
                reason=reason,
                parameters=run_once_parameters(request, agent, actor=actor, reason=reason),
            )
            return format_html(
                'Run <a href="{}">#{}</a> queued for {}; a worker picks it up shortly.',
                reverse("admin:runner_cyclerun_change", args=[run.pk]),
                run.pk,
                agent.slug,
            )
        if control.verb == "set_interval":
            services.agent_set_interval(
                agent=agent,
                interval_minutes=request.POST.get("interval_minutes"),
                actor=actor,
                reason=reason,
            )
            return f"Interval of {agent.slug} set to {agent.interval_minutes} minutes."
        if control.verb == "pause":
            services.agent_pause(
                agent=agent, actor=actor, reason=reason, until=request.POST.get("until", "")
            )
            if agent.paused_until:
                until = agent.paused_until.strftime("%Y-%m-%d %H:%M:%S %Z")
                return f"Agent {agent.slug} paused until {until}; it resumes by itself then."
        else:
            services.TRANSITIONS[control.verb](agent=agent, actor=actor, reason=reason)
        return f"Agent {agent.slug} {control.done} (now {agent.get_state_display().lower()})."
