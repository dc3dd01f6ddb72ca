"""Configuration versions over HTTP: list, one version, the diff of two, and restore.

    GET  /api/agents/{slug}/versions/                   newest first (`limit`, `before`)
    GET  /api/agents/{slug}/versions/{n}/               one version with its configuration
    GET  /api/agents/{slug}/versions/diff/?from=&to=    what changed between two versions (by
                                                        default: what the latest change did)
    POST /api/agents/{slug}/versions/{n}/restore/       make version n the configuration again

Reads need `runner.view_agent`; a restore needs `runner.change_agent` and is one call to
`services.agent_restore_version` (a configuration change: audited, and the next version). A
restore refused anywhere (permission, unknown agent or version, a body of the wrong shape, what
the environment forbids) leaves one `refused` audit event, like every configuration request.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from runner import services, versions
from runner.api import docs, permissions
from runner.api.control import control_request, find_agent
from runner.api.filters import check_query_params
from runner.api.parsers import CONTROL_PARSERS
from runner.api.refusals import AuditedRefusalMixin
from runner.api.serializers import AgentSerializer, ReasonSerializer
from runner.api.views import api_error
from runner.errors import InvalidInput
from runner.models import AuditAction

LIST_LIMIT_MAX = 500
VERSION_MAX = 2**31 - 1


class ConfigChangeSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="A field, or a dotted key such as parameters.min_edge.")
    change = serializers.ChoiceField(choices=["added", "removed", "changed"])
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


class ConfigVersionSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    action = serializers.CharField(help_text="The change that made it: create, configure, ...")
    actor = serializers.CharField(allow_blank=True, help_text="Who (a copy of the username).")
    source = serializers.CharField(help_text="admin, api, cli, scheduler or system")
    reason = serializers.CharField(allow_blank=True, help_text="Why, in the operator's words.")
    restored_from = serializers.IntegerField(allow_null=True)
    audit_event = serializers.IntegerField(allow_null=True)
    config = serializers.JSONField(help_text="Every configuration field of this version.")
    changes = ConfigChangeSerializer(many=True, help_text="Against the version before it.")


class ConfigVersionListSerializer(serializers.Serializer):
    agent = serializers.CharField()
    current = serializers.IntegerField(allow_null=True, help_text="The newest version.")
    results = ConfigVersionSerializer(many=True)


class VersionDiffSerializer(serializers.Serializer):
    agent = serializers.CharField()
    from_version = serializers.IntegerField()
    to_version = serializers.IntegerField()
    changes = ConfigChangeSerializer(many=True)


class RestoredSerializer(serializers.Serializer):
    restored_from = serializers.IntegerField(help_text="The version brought back.")
    version = serializers.IntegerField(help_text="The new version the restore made.")
    agent = AgentSerializer()


def _whole(request, name, *, default=None, maximum=VERSION_MAX):
    text = request.query_params.get(name)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= maximum:
        raise ValidationError({name: [f"{name} must be a whole number from 1 to {maximum}."]})
    return int(text)


class _VersionsView(AuditedRefusalMixin, APIView):
    permission_classes = [permissions.RunnerPermission]

    def required_permission(self, request):
        return permissions.CHANGE if request.method == "POST" else permissions.VIEW

    def audit_action(self):
        return AuditAction.RESTORE if self.request.method == "POST" else None

    def audit_agent(self):
        slug = self.kwargs.get("slug", "")
        return find_agent(slug), slug

    def agent(self):
        agent = find_agent(self.kwargs.get("slug"))
        if agent is None:
            raise NotFound("No agent with that slug.")
        return agent


class AgentVersionsView(_VersionsView):
    """The agent's configuration versions, newest first, each with its changes."""

    @extend_schema(
        summary="Configuration versions, newest first",
        operation_id="agents_versions_list",
        parameters=[
            OpenApiParameter("limit", OpenApiTypes.INT, description="At most this many (100)."),
            OpenApiParameter("before", OpenApiTypes.INT, description="Versions older than this."),
        ],
        responses={200: ConfigVersionListSerializer, **docs.LIST_ERRORS},
    )
    def get(self, request, slug):
        check_query_params(request, {"limit", "before"})
        limit = _whole(request, "limit", default=100, maximum=LIST_LIMIT_MAX)
        before = _whole(request, "before")
        agent = self.agent()
        listed = versions.versions_of(agent)
        current = listed.values_list("number", flat=True).first()
        if before is not None:
            listed = listed.filter(number__lt=before)
        rows = versions.with_changes(list(listed[:limit]), agent)
        return Response(
            ConfigVersionListSerializer(
                {"agent": agent.slug, "current": current, "results": rows}
            ).data
        )


class AgentVersionView(_VersionsView):
    """One configuration version, with its changes against the version before it."""

    @extend_schema(
        summary="One configuration version",
        operation_id="agents_versions_retrieve",
        responses={200: ConfigVersionSerializer, **docs.READ_ERRORS},
    )
    def get(self, request, slug, number):
        check_query_params(request, set())
        agent = self.agent()
        try:
            version = versions.version_get(agent, int(number))
        except InvalidInput as exc:
            raise NotFound(exc.message) from exc
        return Response(ConfigVersionSerializer(versions.with_changes([version], agent)[0]).data)


class AgentVersionDiffView(_VersionsView):
    """What changed between two versions, field by field. `to` defaults to the newest version and
    `from` to the one before `to`, so a bare request shows what the latest change did."""

    @extend_schema(
        summary="Diff of two configuration versions",
        parameters=[
            OpenApiParameter("from", OpenApiTypes.INT, description="Default: the one before to."),
            OpenApiParameter("to", OpenApiTypes.INT, description="Default: the newest version."),
        ],
        responses={200: VersionDiffSerializer, **docs.LIST_ERRORS},
    )
    def get(self, request, slug):
        check_query_params(request, {"from", "to"})
        first, second = _whole(request, "from"), _whole(request, "to")
        agent = self.agent()
        if second is None:
            second = versions.versions_of(agent).values_list("number", flat=True).first()
        if first is None and second is not None:
            first = max(second - 1, 1)
        for name, number in (("from", first), ("to", second)):
            try:
                versions.version_get(agent, number)
            except InvalidInput as exc:
                raise ValidationError({name: [exc.message]}) from exc
        return Response(VersionDiffSerializer(versions.version_diff(agent, first, second)).data)


class AgentVersionRestoreView(_VersionsView):
    """Make this version the agent's configuration again (a configuration change: audited as
    `restore_version` and recorded as the next version). Refused (400 naming the field) when
    the environment forbids what it holds, e.g. `live` while TRADING_MODE=dry_run."""

    parser_classes = CONTROL_PARSERS

    @extend_schema(
        summary="Restore a configuration version",
        request=ReasonSerializer,
        responses={200: RestoredSerializer, **docs.WRITE_ERRORS, 409: docs.REFUSED},
    )
    def post(self, request, slug, number):
        agent, number = self.agent(), int(number)

        def call(*, body, reason, actor):
            restored = services.agent_restore_version(
                agent=agent, number=number, actor=actor, reason=reason
            )
            newest = versions.versions_of(restored).values_list("number", flat=True).first()
            result = {"restored_from": number, "version": newest, "agent": restored}
            return Response(RestoredSerializer(result).data)

        return control_request(
            request,
            agent=agent,
            action=AuditAction.RESTORE,
            fields={"reason"},
            call=call,
            on_error=api_error,
        )
