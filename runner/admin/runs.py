"""Cycle runs in the admin: read-only for everyone, fast on a million rows."""

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.utils.html import format_html

from runner.admin import live
from runner.admin.base import ReadOnlyModelAdmin, related_record_links
from runner.admin.display import (
    VERSIONS_URL_NAME,
    agent_page_url,
    moment_column,
    pre,
    pretty_json,
    run_status_badge,
    short_text_html,
)
from runner.admin.pagination import EstimatedCountPaginator, ProbedDatesQuerySet
from runner.models import CycleRun, RunStatus

# Columns the changelist never shows; deferred so a page of runs stays small.
RUN_HEAVY_FIELDS = ("log_lines", "traceback", "config_snapshot", "summary")


@admin.register(CycleRun)
class CycleRunAdmin(live.LivePagesMixin, ReadOnlyModelAdmin):
    live_list_scope, live_object_scope = "runs", "run"
    change_form_template = "admin/runner/cyclerun/change_form.html"
    list_display = (
        "id",
        "agent",
        "status_badge",
        "trigger",
        "requested_by",
        "queued_at_display",
        "started_at_display",
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
                    "slot_display",
                    "missed_slots",
                    "trading_mode",
                    "config_version_display",
                    "worker",
                    "task_id",
                )
            },
        ),
        (
            "Timing",
            {
                "fields": (
                    "queued_at_display",
                    "started_at_display",
                    "finished_at_display",
                    "duration_ms",
                    "deadline_at_display",
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
            "Run policies",
            {"fields": ("policy_note", "attempt", "retry_of", "not_before", "parameter_overrides")},
        ),
        (
            "Internals",
            {
                "classes": ("collapse",),
                "fields": (
                    "config_display",
                    "fencing_token",
                    "lease_expires_at_display",
                    "heartbeat_at_display",
                ),
            },
        ),
    )

    class Media:
        css = {"all": ("runner/admin.css",)}

    # Times to the second with their zone, each sortable by its own field.
    slot_display = moment_column("slot", "Slot")
    queued_at_display = moment_column("queued_at", "Queued at")
    started_at_display = moment_column("started_at", "Started at")
    finished_at_display = moment_column("finished_at", "Finished at")
    deadline_at_display = moment_column("deadline_at", "Deadline at")
    lease_expires_at_display = moment_column("lease_expires_at", "Lease expires at")
    heartbeat_at_display = moment_column("heartbeat_at", "Heartbeat at")

    def get_queryset(self, request):
        queryset = ProbedDatesQuerySet.wrap(super().get_queryset(request))
        match = getattr(request, "resolver_match", None)
        if match is not None and match.url_name == "runner_cyclerun_changelist":
            # The list never shows them; its joins are list_select_related (which the changelist
            # applies only to a queryset that selects nothing related yet).
            return queryset.defer(*RUN_HEAVY_FIELDS)
        # A run's page: its title and breadcrumb name the agent (CycleRun.__str__).
        return queryset.select_related("agent")

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
        if run.status == RunStatus.RUNNING:
            return live.elapsed_html(run.started_at)
        if run.duration_ms is None:
            return "—"
        return (
            f"{run.duration_ms / 1000:.1f} s" if run.duration_ms >= 100 else f"{run.duration_ms} ms"
        )

    @admin.display(description="Error")
    def error_short(self, run):
        text = ": ".join(part for part in (run.error_type, run.error_message) if part)
        return short_text_html(text, 80)

    @admin.display(description="Summary")
    def summary_display(self, run):
        return pretty_json(run.summary)

    @admin.display(description="Traceback")
    def traceback_display(self, run):
        return pre(run.traceback)

    @admin.display(description="Log lines")
    def log_display(self, run):
        return live.log_html(run)

    @admin.display(description="Configuration it ran with")
    def config_display(self, run):
        return pretty_json(run.config_snapshot)

    @admin.display(description="Configuration version")
    def config_version_display(self, run):
        version = run.config_version
        if version is None:
            return "—"
        page = agent_page_url(run.agent_id, VERSIONS_URL_NAME)
        if page is None:
            return f"version {version.number}"
        return format_html('<a href="{}#version-{}">version {}</a>', page, *[version.number] * 2)
