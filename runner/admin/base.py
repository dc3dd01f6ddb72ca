"""What the runner's ModelAdmins share: read-only tables and links to a record's related rows."""

from collections import Counter

from django.contrib import admin
from django.urls import reverse


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """Viewable by whoever has the view permission; nobody (superusers included) adds, edits or deletes."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def related_record_links(request, obj, admin_site):
    """Every ForeignKey to obj's model: how many rows point at obj through it, linked if we can.

    Found through `_meta.related_objects`, so records of apps this app never imports (the agents'
    forecasts, decisions, positions) appear on a run once their app registers an admin for them.
    A model that points at obj through several keys (a paper position's opened run and last run)
    gets one link per key, labelled by the key's name and filtering on that key.
    """
    # include_hidden: foreign keys declared with related_name="+" still point at the run
    rels = [
        rel
        for rel in obj._meta.get_fields(include_hidden=True)
        if rel.auto_created and not rel.concrete and (rel.one_to_many or rel.one_to_one)
    ]
    keys_per_model = Counter(rel.related_model for rel in rels)
    links = []
    for rel in rels:
        model, opts = rel.related_model, rel.related_model._meta
        lookup = f"{rel.field.name}__{rel.field.target_field.name}__exact"
        value = getattr(obj, rel.field.target_field.attname)
        count = model._default_manager.filter(**{lookup: value}).count()
        label = f"{opts.app_label}: " + (
            opts.verbose_name if count == 1 else opts.verbose_name_plural
        )
        if keys_per_model[model] > 1:
            label += f" ({rel.field.verbose_name})"
        model_admin = admin_site._registry.get(model)
        url = None
        if model_admin is not None and model_admin.has_view_permission(request):
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
            url = f"{url}?{lookup}={value}"
        links.append({"label": label, "count": count, "url": url})
    return links
