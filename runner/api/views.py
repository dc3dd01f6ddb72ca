"""The agent resource: configuration (list, create, edit, delete) and the control actions.

Each control action reads its input, makes one call into `runner.services`, and maps the
domain errors: InvalidInput -> 400 naming the field, TransitionRefused -> 409 with the state.
Configuration takes JSON only; control takes JSON, form and multipart bodies. Every refused
control or configuration request is audited once (see `runner.api.refusals`).
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from runner import selectors, services
from runner.api import docs, permissions
from runner.api.control import (
    actor_for,
    body_text,
    control_request,
    find_agent,
    read_interval,
    read_until,
)
from runner.api.parsers import CONFIG_PARSERS, CONTROL_PARSERS
from runner.api.refusals import AuditedRefusalMixin, mark_audited
from runner.api.schedule import (
    BackfillSerializer,
    RunOnceSerializer,
    ScheduleActionsMixin,
    SchedulePreviewSerializer,
    read_parameters,
)
from runner.api.serializers import (
    AgentCreateSerializer,
    AgentSerializer,
    AgentStatusSerializer,
    CycleRunSerializer,
    IntervalSerializer,
    PauseSerializer,
    ReasonSerializer,
)
from runner.api.throttling import CONTROL_SCOPE, ControlRateThrottle
from runner.errors import InvalidInput, RunnerError, TransitionRefused
from runner.models import INTERVAL_MAX, INTERVAL_MIN, Agent, AuditAction

CONTROL_ACTIONS = {
    "start": AuditAction.START,
    "stop": AuditAction.STOP,
    "pause": AuditAction.PAUSE,
    "resume": AuditAction.RESUME,
    "run_once": AuditAction.RUN_ONCE,
    "interval": AuditAction.SET_INTERVAL,
    "backfill": AuditAction.BACKFILL,
}
SCHEDULE_SERIALIZERS = {
    "schedule": SchedulePreviewSerializer,
    "backfill": BackfillSerializer,
    "run_once": RunOnceSerializer,
}
CONFIG_ACTIONS = {
    "create": (AuditAction.CREATE, permissions.ADD),
    "update": (AuditAction.CONFIGURE, permissions.CHANGE),
    "partial_update": (AuditAction.CONFIGURE, permissions.CHANGE),
    "destroy": (AuditAction.DELETE, permissions.DELETE),
}


def refused_response(exc: TransitionRefused):
    return Response({"detail": exc.message, "state": exc.state}, status=status.HTTP_409_CONFLICT)


def invalid_input(exc: InvalidInput):
    """The 400 of input a service (or the control ladder) refused, and so already audited."""
    errors = getattr(exc, "errors", None) or {exc.field or "non_field_errors": [exc.message]}
    return mark_audited(ValidationError(errors))


def api_error(exc: RunnerError):
    """Bad input is a 400 naming the field; a refused transition is a 409 with the state."""
    if isinstance(exc, InvalidInput):
        raise invalid_input(exc)
    return refused_response(exc)


@extend_schema_view(
    list=extend_schema(
        summary="List agents", responses={200: AgentSerializer(many=True), **docs.READ_ERRORS}
    ),
    retrieve=extend_schema(
        summary="An agent's configuration and state",
        responses={200: AgentSerializer, **docs.READ_ERRORS},
    ),
    create=extend_schema(
        summary="Create an agent",
        request=AgentCreateSerializer,
        responses={201: AgentSerializer, **docs.WRITE_ERRORS},
    ),
    update=extend_schema(
        summary="Replace an agent's configuration",
        responses={200: AgentSerializer, **docs.WRITE_ERRORS, 409: docs.REFUSED},
    ),
    partial_update=extend_schema(
        summary="Edit an agent's configuration",
        responses={200: AgentSerializer, **docs.WRITE_ERRORS, 409: docs.REFUSED},
    ),
    destroy=extend_schema(
        summary="Delete an agent and its runs (its audit trail stays)",
        responses={
            204: OpenApiResponse(description="Deleted."),
            **docs.READ_ERRORS,
            409: docs.REFUSED,
        },
    ),
)
class AgentViewSet(AuditedRefusalMixin, ScheduleActionsMixin, viewsets.ModelViewSet):
    """Agents by slug. State and counters are read-only; change them with the control actions."""

    queryset = Agent.objects.all()
    serializer_class = AgentSerializer
    lookup_field = "slug"
    lookup_value_regex = r"[^/\x00]+"  # any slug-ish text reaches the view (and its JSON 404)
    permission_classes = [permissions.RunnerPermission]
    throttle_classes = [ControlRateThrottle]
    parser_classes = CONFIG_PARSERS
    pagination_class = None
    filter_backends = []

    @property
    def throttle_scope(self):
        return CONTROL_SCOPE if self.action in CONTROL_ACTIONS else None

    def get_serializer_class(self):
        """The input of the action (the browsable API's forms show it)."""
        if self.action == "create":
            return AgentCreateSerializer
        if self.action == "interval":
            return IntervalSerializer
        if self.action in SCHEDULE_SERIALIZERS:
            return SCHEDULE_SERIALIZERS[self.action]
        if self.action in CONTROL_ACTIONS:
            return ReasonSerializer
        return AgentSerializer

    def required_permission(self, request):
        if self.action in CONTROL_ACTIONS:
            return permissions.CONTROL
        if self.action in CONFIG_ACTIONS:
            return CONFIG_ACTIONS[self.action][1]
        return permissions.VIEW

    def audit_action(self):
        if self.action in CONTROL_ACTIONS:
            return CONTROL_ACTIONS[self.action]
        if self.action in CONFIG_ACTIONS:
            return CONFIG_ACTIONS[self.action][0]
        return None

    def audit_agent(self):
        if self.action == "create":
            return None, body_text(self.request, "slug")
        slug = self.kwargs.get(self.lookup_field, "")
        return find_agent(slug), slug

    # --- configuration ---------------------------------------------------------------------

    def perform_create(self, serializer):
        try:
            serializer.instance = services.agent_create(
                values=serializer.validated_data, actor=actor_for(self.request)
            )
        except InvalidInput as exc:
            raise invalid_input(exc) from exc

    def update(self, request, *args, **kwargs):
        agent = self.get_object()
        serializer = self.get_serializer(
            agent, data=request.data, partial=kwargs.get("partial", False)
        )
        serializer.is_valid(raise_exception=True)
        try:
            agent = services.agent_update_config(
                agent=agent, values=serializer.validated_data, actor=actor_for(request)
            )
        except InvalidInput as exc:
            raise invalid_input(exc) from exc
        except TransitionRefused as exc:
            return refused_response(exc)
        return Response(AgentSerializer(agent).data)

    def destroy(self, request, *args, **kwargs):
        agent = self.get_object()
        try:
            services.agent_delete(agent=agent, actor=actor_for(request))
        except TransitionRefused as exc:
            return refused_response(exc)
        return Response(status=status.HTTP_204_NO_CONTENT)

    # --- state ------------------------------------------------------------------------------

    @extend_schema(
        summary="State, counters and the cycle running now",
        responses={200: AgentStatusSerializer, **docs.READ_ERRORS},
    )
    @action(detail=True, methods=["get"])
    def status(self, request, slug=None):
        return Response(AgentStatusSerializer(selectors.agent_status(self.get_object())).data)

    # --- control ----------------------------------------------------------------------------

    def _control(self, request, *, fields, call, read_first=False):
        """The shared control ladder (runner.api.control) on this agent, with the API's errors.

        The agent is named by its slug, which the service locks and reads in one query; with
        `read_first`, `call` gets the Agent read beforehand (for a service that checks its input
        against the agent before it takes the lock)."""
        agent = self.get_object() if read_first else self.kwargs[self.lookup_field]
        return control_request(
            request,
            agent=agent,
            action=CONTROL_ACTIONS[self.action],
            fields=fields,
            call=lambda **inputs: call(agent=agent, **inputs),
            on_error=api_error,
        )

    def _transition(self, request, verb):
        def call(*, agent, body, reason, actor):
            agent = services.TRANSITIONS[verb](agent=agent, actor=actor, reason=reason)
            return Response(AgentSerializer(agent).data)

        return self._control(request, fields={"reason"}, call=call)

    @extend_schema(
        summary="Start (stopped|error -> running; the first cycle is queued at once)",
        request=ReasonSerializer,
        responses={200: AgentSerializer, **docs.CONTROL_ERRORS},
    )
    @action(detail=True, methods=["post"], parser_classes=CONTROL_PARSERS)
    def start(self, request, slug=None):
        return self._transition(request, "start")

    @extend_schema(
        summary="Stop (running|paused|error -> stopped; a running cycle stops at its next step)",
        request=ReasonSerializer,
        responses={200: AgentSerializer, **docs.CONTROL_ERRORS},
    )
    @action(detail=True, methods=["post"], parser_classes=CONTROL_PARSERS)
    def stop(self, request, slug=None):
        return self._transition(request, "stop")

    @extend_schema(
        summary="Pause (running -> paused; a running cycle finishes; optionally until a time)",
        request=PauseSerializer,
        responses={200: AgentSerializer, **docs.CONTROL_ERRORS},
    )
    @action(detail=True, methods=["post"], parser_classes=CONTROL_PARSERS)
    def pause(self, request, slug=None):
        def call(*, agent, body, reason, actor):
            agent = services.agent_pause(
                agent=agent, actor=actor, reason=reason, until=read_until(body)
            )
            return Response(AgentSerializer(agent).data)

        return self._control(request, fields={"reason", "until"}, call=call)

    @extend_schema(
        summary="Resume (paused -> running; never a burst of missed cycles)",
        request=ReasonSerializer,
        responses={200: AgentSerializer, **docs.CONTROL_ERRORS},
    )
    @action(detail=True, methods=["post"], parser_classes=CONTROL_PARSERS)
    def resume(self, request, slug=None):
        return self._transition(request, "resume")

    @extend_schema(
        summary="Queue one manual cycle (any state; refused while a cycle is in flight)",
        description="Optional `parameters` override the agent's own for this run only.",
        request=RunOnceSerializer,
        responses={202: CycleRunSerializer, **docs.CONTROL_ERRORS},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="run-once",
        url_name="run-once",
        parser_classes=CONTROL_PARSERS,
    )
    def run_once(self, request, slug=None):
        def call(*, agent, body, reason, actor):
            run = services.agent_run_once(
                agent=agent, actor=actor, reason=reason, parameters=read_parameters(body)
            )
            return Response(CycleRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

        return self._control(request, fields={"reason", "parameters"}, call=call)

    @extend_schema(
        summary=f"Set the interval ({INTERVAL_MIN}..{INTERVAL_MAX} minutes; next run recomputed)",
        request=IntervalSerializer,
        responses={200: AgentSerializer, **docs.CONTROL_ERRORS},
    )
    @action(detail=True, methods=["put"], parser_classes=CONTROL_PARSERS)
    def interval(self, request, slug=None):
        def call(*, agent, body, reason, actor):
            agent = services.agent_set_interval(
                agent=agent, interval_minutes=read_interval(body), actor=actor, reason=reason
            )
            return Response(AgentSerializer(agent).data)

        return self._control(request, fields={"interval_minutes", "reason"}, call=call)
