"""A user's permissions: one query, the same answer as Django's ModelBackend."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runner.auth import load_permissions, permissions_of
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_own_and_group_permissions_in_one_query():
    user = UserFactory(perms=["runner.view_agent"])
    group = Group.objects.create(name="operators")
    group.permissions.add(Permission.objects.get(codename="control_agent"))
    user.groups.add(group)
    with CaptureQueriesContext(connection) as context:
        found = permissions_of(user)
    assert len(context.captured_queries) == 1
    assert found == {"runner.view_agent", "runner.control_agent"}
    fresh = type(user).objects.get(pk=user.pk)
    assert found == fresh.get_all_permissions()  # ModelBackend's own answer


def test_has_perm_reuses_the_loaded_set():
    user = UserFactory(perms=["runner.view_agent"])
    load_permissions(user)
    with CaptureQueriesContext(connection) as context:
        assert user.has_perm("runner.view_agent")
        assert not user.has_perm("runner.control_agent")
    assert context.captured_queries == []


def test_superusers_and_inactive_users_load_nothing():
    admin = UserFactory(is_superuser=True)
    idle = UserFactory(perms=["runner.view_agent"], is_active=False)
    with CaptureQueriesContext(connection) as context:
        load_permissions(admin)
        load_permissions(idle)
        assert admin.has_perm("runner.control_agent")
        assert not idle.has_perm("runner.view_agent")
    assert context.captured_queries == []


def test_other_backends_are_asked_as_usual(settings):
    settings.AUTHENTICATION_BACKENDS = [
        "django.contrib.auth.backends.ModelBackend",
        "django.contrib.auth.backends.AllowAllUsersModelBackend",
    ]
    user = UserFactory(perms=["runner.view_agent"])
    load_permissions(user)
    assert not hasattr(user, "_perm_cache")
