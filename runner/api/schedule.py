"""The agent resource's schedule endpoints: the preview of the next fire times and backfill.

`GET /api/agents/{slug}/schedule/?count=N` is a read; `POST /api/agents/{slug}/backfill/` is a
control request on the shared ladder (runner.api.control), audited like the others.
"""

import json

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from runner import schedules, services
from runner.api import docs
from runner.api.control import ControlInputError
from runner.api.filters import check_query_params
from runner.api.parsers import CONTROL_PARSERS
from runner.api.serializers import CycleRunSerializer, ReasonSerializer
from runner.errors import RunnerError
from runner.validation import parse_bounded_int

PREVIEW_DEFAULT, PREVIEW_MAX = 5, 100


class FireTimeSerializer(serializers.Serializer):
    slot = serializers.DateTimeField(help_text="The slot, in UTC (runs record this time).")
    fires_at = serializers.DateTimeField(help_text="When it fires, in UTC (the slot + jitter).")
    fires_at_local = serializers.CharField(help_text="The same moment in the agent's time zone.")


class SchedulePreviewSerializer(serializers.Serializer):
    agent = serializers.CharField()
    schedule_kind = serializers.CharField()
    interval_minutes = serializers.IntegerField()
    cron = serializers.CharField(allow_blank=True)
    timezone = serializers.CharField()
    jitter_seconds = serializers.IntegerField()
    active_windows = serializers.JSONField()
    fire_times = FireTimeSerializer(many=True)


class BackfillSerializer(ReasonSerializer):
    """Body of a backfill: the past range whose slots to queue as `backfill` runs."""

    def get_fields(self):
        fields = super().get_fields()
        help_text = "ISO 8601 date or datetime (UTC if it names no offset)."
        fields["from"] = serializers.CharField(help_text=f"Start of the range; {help_text}")
        fields["to"] = serializers.CharField(
            help_text=f"End of the range, not after now; {help_text}"
        )
        return fields


class RunOnceSerializer(ReasonSerializer):
    """Body of run-once: a reason, and parameters that override the agent's own for this run."""

    parameters = serializers.JSONField(
        required=False,
        help_text="Parameter overrides for this run only, checked by the agent kind; the "
        "stored configuration does not change.",
    )


def schedule_preview(agent, *, count, now=None) -> dict:
    now = now or timezone.now()
    return {
        "agent": agent.slug,
        "schedule_kind": agent.schedule_kind,
        "interval_minutes": agent.interval_minutes,
        "cron": agent.cron,
        "timezone": agent.timezone,
        "jitter_seconds": agent.jitter_seconds,
        "active_windows": agent.active_windows,
        "fire_times": schedules.preview(agent, count=count, now=now),
    }


def read_parameters(body):
    """Run-once `parameters`: a JSON object, or (from a form) the JSON text of one."""
    value = body.get("parameters")
    if body.from_form and isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ControlInputError("parameters", "parameters must be a JSON object.") from None
    if value is not None and not isinstance(value, dict):
        raise ControlInputError("parameters", "parameters must be a JSON object.")
    return value


def read_range_value(body, name):
    value = body.get(name)
    if not isinstance(value, str):
        raise ControlInputError(name, f"{name} must be an ISO 8601 date or datetime.")
    return value


class ScheduleActionsMixin:
    """`schedule` (preview) and `backfill` actions for the agent viewset."""

    @extend_schema(
        summary="Preview the next fire times (UTC and the agent's time zone)",
        parameters=[
            OpenApiParameter(
                "count", int, description=f"How many (1..{PREVIEW_MAX}, default {PREVIEW_DEFAULT})."
            )
        ],
        responses={200: SchedulePreviewSerializer, **docs.LIST_ERRORS},
    )
    @action(detail=True, methods=["get"])
    def schedule(self, request, slug=None):
        agent = self.get_object()
        check_query_params(request, {"count"})
        raw = request.query_params.get("count", PREVIEW_DEFAULT)
        try:
            count = parse_bounded_int(raw, field="count", low=1, high=PREVIEW_MAX)
        except RunnerError as exc:
            raise ValidationError({"count": [exc.message]}) from exc
        return Response(SchedulePreviewSerializer(schedule_preview(agent, count=count)).data)

    @extend_schema(
        summary="Backfill: queue the agent's slots of a past range as `backfill` runs",
        request=BackfillSerializer,
        responses={202: CycleRunSerializer(many=True), **docs.CONTROL_ERRORS},
    )
    @action(detail=True, methods=["post"], parser_classes=CONTROL_PARSERS)
    def backfill(self, request, slug=None):
        def call(*, agent, body, reason, actor):
            runs = services.agent_backfill(
                agent=agent,
                start=read_range_value(body, "from"),
                end=read_range_value(body, "to"),
                actor=actor,
                reason=reason,
            )
            return Response(
                CycleRunSerializer(runs, many=True).data, status=status.HTTP_202_ACCEPTED
            )

        return self._control(request, fields={"from", "to", "reason"}, call=call, read_first=True)
