"""A user's permissions in one query, kept on the user object for the rest of the request.

Django's ModelBackend asks twice (the user's own permissions, then its groups'), each a join
through content types, and a control request needs them before it does anything else. Here one
query asks for both (two `IN` subqueries on the link tables), and the set is stored where
ModelBackend keeps its own per-object cache (`_perm_cache`), so `user.has_perm` and everything
after it in the request reuse it instead of asking again.
"""

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.db.models import Q

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def permissions_of(user) -> set[str]:
    """`app_label.codename` of every permission the user holds, directly or through a group."""
    own = Permission.user_set.through.objects.filter(user_id=user.pk).values("permission_id")
    groups = user.groups.through.objects.filter(user_id=user.pk).values("group_id")
    grouped = Group.permissions.through.objects.filter(group_id__in=groups).values("permission_id")
    rows = (
        Permission.objects.filter(Q(pk__in=own) | Q(pk__in=grouped))
        .order_by()  # a set: no sort by content type and codename
        .values_list("content_type__app_label", "codename")
    )
    return {f"{app_label}.{codename}" for app_label, codename in rows}


def load_permissions(user):
    """Resolve the user's permissions once (one query) unless has_perm needs none or has them.

    Active superusers pass without a query; inactive users hold nothing. Only ModelBackend's
    cache is filled: with other backends configured, has_perm asks them as usual.
    """
    if not user or not user.is_authenticated or not user.is_active or user.is_superuser:
        return
    if list(settings.AUTHENTICATION_BACKENDS) != [MODEL_BACKEND] or hasattr(user, "_perm_cache"):
        return
    user._perm_cache = permissions_of(user)
