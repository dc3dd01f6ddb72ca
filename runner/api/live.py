"""The live tail over HTTP: `GET /api/runs/{id}/log/?after=N`, the log lines after a cursor.

Poll it with the `next` of the previous answer until `ended` is true: each line comes exactly once
(runner.tail). Send the previous answer's ETag as If-None-Match and an unchanged answer is a bodiless
304. Query parameters are strict like the rest of the API: anything but one whole `after` from 0
up is a 400 naming it.
"""

from django.utils.http import parse_etags, quote_etag
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from runner import tail
from runner.api import docs, permissions
from runner.api.filters import EMPTY_VALUE_MESSAGE, ID_MAX, check_query_params
from runner.models import RunStatus


class LogQuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(
        min_value=0,
        max_value=ID_MAX,
        required=False,
        default=0,
        help_text="Return the lines numbered after this one (lines are numbered from 1).",
    )


class LogLineSerializer(serializers.Serializer):
    number = serializers.IntegerField(help_text="The line's number, from 1.")
    text = serializers.CharField()


class RunLogSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    agent = serializers.CharField()
    status = serializers.ChoiceField(choices=RunStatus.choices)
    ended = serializers.BooleanField(help_text="The run has ended: no line will follow.")
    after = serializers.IntegerField(help_text="The cursor asked with.")
    next = serializers.IntegerField(
        help_text="The cursor to ask with next (the last line's number)."
    )
    lines = LogLineSerializer(many=True)


ETAG = OpenApiParameter(
    "ETag",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=[200],
    description="Send it back as If-None-Match to the same URL: an unchanged answer is then a 304.",
)


class RunLogView(APIView):
    """A run's log lines after a cursor, and whether the run has ended (the live tail)."""

    permission_classes = [permissions.RunnerPermission]

    def required_permission(self, request):
        return permissions.VIEW

    @extend_schema(
        operation_id="runs_log_retrieve",
        summary="A run's log lines after a cursor (follow a running cycle)",
        parameters=[LogQuerySerializer, ETAG],
        responses={
            200: RunLogSerializer,
            304: OpenApiResponse(description="Nothing new since the ETag sent as If-None-Match."),
            **docs.LIST_ERRORS,
        },
    )
    def get(self, request, id):
        check_query_params(request, {"after"})
        if request.query_params.get("after") == "":  # present means set, as in every filter
            raise ValidationError({"after": [EMPTY_VALUE_MESSAGE]})
        query = LogQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = tail.log_after(id, query.validated_data["after"]) if id <= ID_MAX else None
        if page is None:
            raise NotFound("No run with that id.")
        etag = quote_etag(page.version)
        headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
        sent = parse_etags(request.headers.get("If-None-Match", ""))
        if etag in sent or "*" in sent:
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
        return Response(RunLogSerializer(page.as_dict()).data, headers=headers)
