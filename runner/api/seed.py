"""The seed's own endpoints on the default agent: same paths, fields and messages as its server.

Clients written for the seed's FastAPI runner keep working: `/api/agent/status`, `start`, `stop`,
`pause`, `resume`, `run-once` and `interval` (PUT, or POST as the fork's server also took it),
without trailing slashes, and errors as 400 `{"detail": "Agent is already running"}`. The seed's
own words where it had them ("Agent stopped successfully", "Interval must be at least 1 minute"),
and its counters: `run_count` and `last_run` count successful cycles, `error_count` and
`last_error` failed ones. Underneath, every request goes through the same services as the rest of
the API and is audited the same way.
"""

import logging

from django.utils.module_loading import import_string
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response
from rest_framework.views import APIView

from runner import selectors, services
from runner.api import docs, permissions
from runner.api.control import control_request, find_agent, read_interval, read_until
from runner.api.parsers import CONTROL_PARSERS
from runner.api.refusals import AuditedRefusalMixin
from runner.api.serializers import (
    IntervalSerializer,
    PauseSerializer,
    ReasonSerializer,
    SeedActionSerializer,
    SeedIntervalSerializer,
    SeedRunResultSerializer,
    SeedStartSerializer,
    SeedStatusSerializer,
)
from runner.api.throttling import CONTROL_SCOPE, ControlRateThrottle
from runner.api.waiting import wait_for_run
from runner.conf import conf
from runner.models import INTERVAL_MAX, INTERVAL_MIN, AuditAction, RunStatus

logger = logging.getLogger(__name__)

SEED_TOTALS = {"total_forecasts": 0, "total_trades": 0}
# The seed's words for an interval out of range; other refusals keep the runner's.
SEED_INTERVAL_MESSAGES = {
    "min": f"Interval must be at least {INTERVAL_MIN} minute",
    "max": f"Interval must be at most {INTERVAL_MAX} minutes",
}


def status_extras(agent) -> dict:
    """Items from the RUNNER_STATUS_EXTRAS callables; a failing one is logged and left out."""
    extras = {}
    for path in conf.RUNNER_STATUS_EXTRAS:
        try:
            extras.update(import_string(path)(agent))
        except Exception:
            logger.exception("status extra %s failed for agent %s", path, agent.slug)
    return extras


def seed_error(exc):
    """A refusal in the seed's shape: 400 {"detail"}, with the field for bad input."""
    message = exc.message
    if exc.field == "interval_minutes" and getattr(exc, "bound", None):
        message = SEED_INTERVAL_MESSAGES[exc.bound]
    body = {"detail": message}
    if exc.field:
        body["field"] = exc.field
    return Response(body, status=status.HTTP_400_BAD_REQUEST)


class SeedAgentView(AuditedRefusalMixin, APIView):
    """Base of the seed endpoints: the default agent, audited and throttled control, whose body
    may be JSON, a form or multipart."""

    permission_classes = [permissions.RunnerPermission]
    throttle_classes = [ControlRateThrottle]
    parser_classes = CONTROL_PARSERS
    audit_as = None  # the AuditAction of a control endpoint; None for reads
    body_fields = frozenset({"reason"})

    def is_control(self, request):
        """A control request: an unsafe method this endpoint serves (a 405 is not audited)."""
        return (
            self.audit_as is not None
            and request.method not in SAFE_METHODS
            and hasattr(self, request.method.lower())
        )

    @property
    def throttle_scope(self):
        return CONTROL_SCOPE if self.is_control(self.request) else None

    def required_permission(self, request):
        return permissions.CONTROL if self.is_control(request) else permissions.VIEW

    def audit_action(self):
        return self.audit_as if self.is_control(self.request) else None

    def audit_agent(self):
        slug = conf.RUNNER_DEFAULT_AGENT
        return find_agent(slug), slug

    def default_agent(self):
        agent = find_agent(conf.RUNNER_DEFAULT_AGENT)
        if agent is None:
            raise self.missing()
        return agent

    @staticmethod
    def missing():
        return NotFound(
            f"The default agent {conf.RUNNER_DEFAULT_AGENT!r} does not exist "
            "(run `python manage.py migrate`, or set RUNNER_DEFAULT_AGENT)."
        )

    def control(self, request, respond):
        """The shared control ladder (runner.api.control) on the default agent, named by its slug
        (the service locks and reads it in one query); every refusal answers 400 in the seed's
        shape."""
        slug = conf.RUNNER_DEFAULT_AGENT
        return control_request(
            request,
            agent=slug,
            action=self.audit_as,
            fields=self.body_fields,
            call=lambda **inputs: respond(agent=slug, **inputs),
            on_error=seed_error,
            not_found=self.missing,
        )


class SeedStatusView(SeedAgentView):
    """The default agent's state and counters, with the seed's field names."""

    @extend_schema(
        tags=["seed-compatible"],
        summary="Seed-compatible: the default agent's status",
        responses={200: SeedStatusSerializer, **docs.SEED_READ_ERRORS},
    )
    def get(self, request):
        agent = self.default_agent()
        current = selectors.agent_status(agent)
        body = {
            "state": current["state"],
            "running": current["running"],
            # The seed counted successful cycles as runs; failed ones only as errors.
            "last_run": current["last_success"],
            "next_run": current["next_run"],
            "interval_minutes": current["interval_minutes"],
            "run_count": current["success_count"],
            "error_count": current["error_count"],
            "last_error": current["last_error"] or None,
            **SEED_TOTALS,
            **status_extras(agent),
        }
        return Response(SeedStatusSerializer(body).data)


class SeedStartView(SeedAgentView):
    """Start the default agent; its first cycle is queued at once."""

    audit_as = AuditAction.START

    @extend_schema(
        tags=["seed-compatible"],
        summary="Seed-compatible: start the default agent",
        request=ReasonSerializer,
        responses={200: SeedStartSerializer, **docs.SEED_CONTROL_ERRORS},
    )
    def post(self, request):
        def respond(*, agent, body, reason, actor):
            agent = services.agent_start(agent=agent, actor=actor, reason=reason)
            return Response(
                SeedStartSerializer(
                    {
                        "status": "started",
                        "message": f"Agent started with {agent.interval_minutes} minute interval",
                        "next_run": agent.next_run,
                    }
                ).data
            )

        return self.control(request, respond)


def _simple_transition(service, word, message):
    def respond(*, agent, body, reason, actor):
        service(agent=agent, actor=actor, reason=reason)
        return Response(SeedActionSerializer({"status": word, "message": message}).data)

    return respond


class SeedStopView(SeedAgentView):
    """Stop the default agent; a running cycle stops at its next step."""

    audit_as = AuditAction.STOP

    @extend_schema(
        tags=["seed-compatible"],
        summary="Seed-compatible: stop the default agent",
        request=ReasonSerializer,
        responses={200: SeedActionSerializer, **docs.SEED_CONTROL_ERRORS},
    )
    def post(self, request):
        return self.control(
            request,
            _simple_transition(services.agent_stop, "stopped", "Agent stopped successfully"),
        )


class SeedPauseView(SeedAgentView):
    """Pause the default agent; a running cycle finishes."""

    audit_as = AuditAction.PAUSE
    body_fields = frozenset({"reason", "until"})

    @extend_schema(
        tags=["seed-compatible"],
        summary="Seed-compatible: pause the default agent (optionally until a time)",
        request=PauseSerializer,
        responses={200: SeedActionSerializer, **docs.SEED_CONTROL_ERRORS},
    )
    def post(self, request):
        def respond(*, agent, body, reason, actor):
            agent = services.agent_pause(
                agent=agent, actor=actor, reason=reason, until=read_until(body)
            )
            until = f" until {agent.paused_until.isoformat()}" if agent.paused_until else ""
            message = f"Agent paused{until}"
            return Response(SeedActionSerializer({"status": "paused", "message": message}).data)

        return self.control(request, respond)


class SeedResumeView(SeedAgentView):
    """Resume the default agent; never a burst of missed cycles."""

    audit_as = AuditAction.RESUME

    @extend_schema(
        tags=["seed-compatible"],
        summary="Seed-compatible: resume the default agent",
        request=ReasonSerializer,
        responses={200: SeedActionSerializer, **docs.SEED_CONTROL_ERRORS},
    )
    def post(self, request):
        return self.control(
            request, _simple_transition(services.agent_resume, "resumed", "Agent resumed")
        )


class SeedRunOnceView(SeedAgentView):
    """Run one cycle of the default agent and wait (bounded) for its result."""

    audit_as = AuditAction.RUN_ONCE

    @extend_schema(
        tags=["seed-compatible"],
        summary="Seed-compatible: run one cycle of the default agent and wait for it",
        description=(
            "Queues a manual cycle and waits for it, at most RUNNER_API_RUN_ONCE_WAIT_SECONDS. "
            "If no worker claims it within RUNNER_API_RUN_ONCE_GRACE_SECONDS, the web process "
            "runs it itself. 200 when the cycle has ended (success true or false); 202 when it "
            "is still queued or running at the end of the wait (see /api/runs/{run_id}/)."
        ),
        request=ReasonSerializer,
        responses={
            200: SeedRunResultSerializer,
            202: SeedRunResultSerializer,
            **docs.SEED_CONTROL_ERRORS,
        },
    )
    def post(self, request):
        def respond(*, agent, body, reason, actor):
            queued = services.agent_run_once(agent=agent, actor=actor, reason=reason)
            run = wait_for_run(
                queued.pk,
                wait_seconds=conf.RUNNER_API_RUN_ONCE_WAIT_SECONDS,
                grace_seconds=conf.RUNNER_API_RUN_ONCE_GRACE_SECONDS,
            )
            pending = run.status in (RunStatus.QUEUED, RunStatus.RUNNING)
            if pending:
                error = (
                    f"Run {run.pk} is still {run.status} after "
                    f"{conf.RUNNER_API_RUN_ONCE_WAIT_SECONDS:g} s; see /api/runs/{run.pk}/"
                )
            elif run.status == RunStatus.SUCCEEDED:
                error = None
            else:
                error = (
                    f"{run.error_type}: {run.error_message}".strip(": ")
                    or f"Run {run.pk} {run.status}"
                )
            result = {
                "success": run.status == RunStatus.SUCCEEDED,
                "started_at": run.started_at,
                "completed_at": run.finished_at,
                "error": error,
                "run_id": run.pk,
                "status": run.status,
            }
            return Response(
                SeedRunResultSerializer(result).data,
                status=status.HTTP_202_ACCEPTED if pending else status.HTTP_200_OK,
            )

        return self.control(request, respond)


INTERVAL_SCHEMA = {
    "tags": ["seed-compatible"],
    "request": IntervalSerializer,
    "responses": {200: SeedIntervalSerializer, **docs.SEED_CONTROL_ERRORS},
}


class SeedIntervalView(SeedAgentView):
    """Set the default agent's interval in minutes (1..10080)."""

    audit_as = AuditAction.SET_INTERVAL
    body_fields = frozenset({"interval_minutes", "reason"})

    @extend_schema(summary="Seed-compatible: set the default agent's interval", **INTERVAL_SCHEMA)
    def put(self, request):
        return self.control(request, self.respond)

    @extend_schema(
        summary="Seed-compatible: set the default agent's interval (POST, as the fork's server "
        "also takes it)",
        **INTERVAL_SCHEMA,
    )
    def post(self, request):
        return self.control(request, self.respond)

    @staticmethod
    def respond(*, agent, body, reason, actor):
        agent = services.agent_set_interval(
            agent=agent, interval_minutes=read_interval(body), actor=actor, reason=reason
        )
        minutes = agent.interval_minutes
        return Response(
            SeedIntervalSerializer(
                {
                    "status": "updated",
                    "interval_minutes": minutes,
                    "message": f"Interval updated to {minutes} minutes",
                }
            ).data
        )
