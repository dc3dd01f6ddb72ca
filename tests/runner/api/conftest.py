import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from runner.models import Agent
from tests.factories import AgentFactory, UserFactory

ALL_PERMS = [
    "runner.view_agent",
    "runner.control_agent",
    "runner.add_agent",
    "runner.change_agent",
    "runner.delete_agent",
]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Factories set passwords; the real hasher's cost is the point in production, not here."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def token_client(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def operator(db):
    return UserFactory(username="operator", perms=ALL_PERMS)


@pytest.fixture
def api(operator):
    """A client authenticated by token as a user holding every runner permission."""
    return token_client(operator)


@pytest.fixture
def viewer(db):
    return UserFactory(username="viewer", perms=["runner.view_agent"])


@pytest.fixture
def viewer_api(viewer):
    return token_client(viewer)


@pytest.fixture
def agent(db):
    return AgentFactory(slug="alpha", kind="test-ok", parameters={"value": 3})


@pytest.fixture
def default_agent(db, settings):
    """The migration's default agent, switched to a test kind (the forecaster is another app's)."""
    agent, _ = Agent.objects.get_or_create(
        slug=settings.RUNNER_DEFAULT_AGENT, defaults={"name": "Default", "kind": "test-ok"}
    )
    Agent.objects.filter(pk=agent.pk).update(kind="test-ok", parameters={})
    agent.refresh_from_db()
    return agent
