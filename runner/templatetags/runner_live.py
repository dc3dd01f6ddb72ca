"""`{% runner_live "agent" original.pk %}`: the element that makes an admin page live (live.js)."""

from django import template

from runner.admin import live

register = template.Library()


@register.inclusion_tag("admin/runner/live.html", takes_context=True)
def runner_live(context, kind, object_id=None):
    """The page's live indicator, carrying its version URL, version, ticket and clock."""
    scope = kind if object_id is None else f"{kind}-{object_id}"
    return live.page_context(context["request"], scope)
