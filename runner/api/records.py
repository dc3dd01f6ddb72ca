"""The read-only resources: cycle runs and the audit trail, newest first, cursor-paginated."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.dateparse import parse_datetime
from django.utils.timezone import is_naive, make_aware
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination

from runner.api import docs, permissions
from runner.api.filters import AuditEventFilter, RunFilter, StrictQueryFilterBackend, to_utc
from runner.api.serializers import (
    AuditEventSerializer,
    CycleRunDetailSerializer,
    CycleRunSerializer,
)
from runner.models import AuditEvent, CycleRun


class NewestFirstCursor(CursorPagination):
    """50 per page; a cursor whose position is not a time is an invalid cursor (404), not a 500."""

    page_size = 50

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        if cursor is None or cursor.position is None:
            return cursor
        moment = parse_datetime(cursor.position) if "\x00" not in cursor.position else None
        if moment is None:
            raise NotFound(self.invalid_cursor_message)
        try:
            return cursor._replace(
                position=to_utc(make_aware(moment) if is_naive(moment) else moment).isoformat()
            )
        except (DjangoValidationError, ValueError, OverflowError):
            raise NotFound(self.invalid_cursor_message) from None


class RunCursor(NewestFirstCursor):
    ordering = ("-queued_at", "-id")


class EventCursor(NewestFirstCursor):
    ordering = ("-created_at", "-id")


class ReadOnlyRunnerViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [permissions.RunnerPermission]
    filter_backends = [StrictQueryFilterBackend]

    def required_permission(self, request):
        return permissions.VIEW


@extend_schema_view(
    list=extend_schema(
        summary="Cycle runs, newest first",
        responses={200: CycleRunSerializer(many=True), **docs.LIST_ERRORS},
    ),
    retrieve=extend_schema(
        summary="One cycle run with its log lines",
        responses={200: CycleRunDetailSerializer, **docs.READ_ERRORS},
    ),
)
class CycleRunViewSet(ReadOnlyRunnerViewSet):
    """One record per cycle: trigger, who asked, timing, worker, outcome."""

    queryset = CycleRun.objects.select_related("agent", "requested_by", "config_version")
    filterset_class = RunFilter
    pagination_class = RunCursor

    def get_serializer_class(self):
        return CycleRunDetailSerializer if self.action == "retrieve" else CycleRunSerializer


@extend_schema_view(
    list=extend_schema(
        summary="The audit trail, newest first",
        responses={200: AuditEventSerializer(many=True), **docs.LIST_ERRORS},
    ),
    retrieve=extend_schema(
        summary="One audit event", responses={200: AuditEventSerializer, **docs.READ_ERRORS}
    ),
)
class AuditEventViewSet(ReadOnlyRunnerViewSet):
    """Every control request, applied or refused (append-only)."""

    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    pagination_class = EventCursor
