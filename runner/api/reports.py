"""Report endpoints: `/api/agents/<slug>/report/` and `/api/reports/` (all agents).

Both print what `runner.reports.run_report()` returns, exactly as the admin page and
`manage.py runreport --format json` do. A bad `since`, `until` or `bucket` is a 400 naming it,
and so is an unknown, repeated or empty parameter (the runner API's strict query rules).
"""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from runner import reports
from runner.api import docs
from runner.api.filters import EMPTY_VALUE_MESSAGE, check_query_params
from runner.errors import InvalidInput
from runner.models import Agent


class CanViewAgents(permissions.BasePermission):
    message = "You need the runner.view_agent permission to read reports."

    def has_permission(self, request, view):
        return bool(request.user and request.user.has_perm("runner.view_agent"))


NON_EMPTY = {"type": "string", "minLength": 1}
REPORT_PARAMETERS = [
    OpenApiParameter(
        "since",
        NON_EMPTY,
        description="Start of the window (inclusive): a duration before now such as 30m, 12h, "
        "7d or 2w, or an ISO 8601 date/datetime. Default 7d.",
    ),
    OpenApiParameter(
        "until",
        NON_EMPTY,
        description="End of the window (exclusive), same forms as since, or `now` (the default).",
    ),
    OpenApiParameter(
        "bucket", OpenApiTypes.STR, enum=list(reports.BUCKETS), description="Default day."
    ),
]


class _ReportView(APIView):
    permission_classes = [permissions.IsAuthenticated, CanViewAgents]

    def _report(self, request, agent):
        check_query_params(request, {"since", "until", "bucket", "format"})
        empty = [name for name, value in request.query_params.items() if value == ""]
        if empty:
            raise ValidationError({name: [EMPTY_VALUE_MESSAGE] for name in empty})
        try:
            report = reports.run_report_from_params(
                agent=agent,
                since=request.query_params.get("since"),
                until=request.query_params.get("until"),
                bucket=request.query_params.get("bucket"),
            )
        except InvalidInput as exc:
            raise ValidationError({exc.field: [exc.message]}) from exc
        return Response(report)


class AgentReportView(_ReportView):
    """One agent's report over [since, until): runs by status and trigger, success rate,
    duration and start-delay percentiles, runs and failures per bucket, failures by error type,
    MTBF/MTTR and the longest failure streak, control actions by actor and source, and outputs."""

    @extend_schema(
        parameters=REPORT_PARAMETERS, responses={200: OpenApiTypes.OBJECT, **docs.LIST_ERRORS}
    )
    def get(self, request, slug):
        return self._report(request, get_object_or_404(Agent, slug=slug))


class AllAgentsReportView(_ReportView):
    """The same report over all agents, with a per-agent breakdown under `agents`."""

    @extend_schema(
        parameters=REPORT_PARAMETERS,
        responses={200: OpenApiTypes.OBJECT, **docs.QUERY_ERRORS},
    )
    def get(self, request):
        return self._report(request, None)
