"""The audit trail in the admin: read-only for everyone, superusers included."""

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.utils.html import format_html

from runner.admin.base import ReadOnlyModelAdmin, related_record_links
from runner.admin.display import (
    badge,
    changes_column_html,
    changes_html,
    moment_column,
    short_text_html,
)
from runner.admin.pagination import EstimatedCountPaginator, ProbedDatesQuerySet
from runner.models import AuditEvent

# The list cuts long texts (the full text is in the cell's title) so every column fits on screen.
LIST_TEXT_LIMIT = 100
LIST_CHANGE_LIMIT = 40


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyModelAdmin):
    change_form_template = "admin/runner/related_records_change_form.html"
    list_display = (
        "created_at_display",
        "agent_slug",
        "action",
        "outcome_badge",
        "actor_display",
        "source",
        "transition",
        "changes_display",
        "reason_display",
    )
    list_display_links = ("created_at_display",)
    list_filter = ("agent", "action", "actor", "source", "outcome")
    date_hierarchy = "created_at"
    search_fields = ("agent_slug", "actor_username", "reason", "refusal_reason")
    ordering = ("-created_at", "-id")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would count the whole table
    paginator = EstimatedCountPaginator
    fieldsets = (
        (
            "Request",
            {
                "fields": (
                    "created_at_display",
                    "agent",
                    "agent_slug",
                    "action",
                    "outcome",
                    "refusal_reason",
                    "reason",
                )
            },
        ),
        ("Effect", {"fields": ("state_before", "state_after", "changes_full")}),
        (
            "Who and where",
            {"fields": ("actor", "actor_username", "source", "client_ip", "request_id")},
        ),
    )

    class Media:
        css = {"all": ("runner/admin.css",)}

    created_at_display = moment_column("created_at", "Created at")

    def get_queryset(self, request):
        return ProbedDatesQuerySet.wrap(super().get_queryset(request))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        event = self.get_object(request, unquote(object_id))
        if event is not None and self.has_view_permission(request, event):
            extra_context = {
                **(extra_context or {}),
                "related_records": related_record_links(request, event, self.admin_site),
                "related_records_title": "Caused by this event",
            }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="Outcome", ordering="outcome")
    def outcome_badge(self, event):
        shown = badge(event.outcome, event.get_outcome_display(), "outcome")
        if event.refusal_reason:
            return format_html(
                '{}<br><span class="runner-when">{}</span>',
                shown,
                short_text_html(event.refusal_reason, LIST_TEXT_LIMIT),
            )
        return shown

    @admin.display(description="Actor", ordering="actor_username")
    def actor_display(self, event):
        return event.actor_username or "—"

    @admin.display(description="State")
    def transition(self, event):
        if not event.state_before and not event.state_after:
            return "—"
        if event.state_before == event.state_after:
            return event.state_after
        return format_html(
            '<span class="runner-nowrap">{} → {}</span>',
            event.state_before or "∅",
            event.state_after or "∅",
        )

    @admin.display(description="Changes")
    def changes_display(self, event):
        return changes_column_html(event.changes, limit=LIST_CHANGE_LIMIT)

    @admin.display(description="Reason", ordering="reason")
    def reason_display(self, event):
        return short_text_html(event.reason, LIST_TEXT_LIMIT)

    @admin.display(description="Changes (before → after)")
    def changes_full(self, event):
        return changes_html(event.changes)
