import pytest
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_control_requests_are_throttled_per_user_and_reads_are_not(api, agent, settings):
    settings.RUNNER_API_CONTROL_RATE = "3/min"
    codes = [api.post("/api/agents/alpha/start/").status_code for _ in range(3)]
    assert codes == [200, 409, 409]
    throttled = api.post("/api/agents/alpha/stop/")
    assert throttled.status_code == 429 and "throttled" in throttled.json()["detail"]
    assert "Retry-After" in throttled
    assert api.get("/api/agents/alpha/").json()["state"] == "running"  # the stop never happened
    assert api.post("/api/agent/stop").status_code == 429  # the seed endpoints share the limit
    for _ in range(5):
        assert api.get("/api/agents/alpha/status/").status_code == 200


def test_createapitoken_prints_a_working_token(capsys, agent):
    UserFactory(username="script", perms=["runner.view_agent"])
    call_command("createapitoken", "script")
    key = capsys.readouterr().out.strip()
    assert Token.objects.get(user__username="script").key == key
    call_command("createapitoken", "script")
    assert capsys.readouterr().out.strip() == key  # stable until rotated
    call_command("createapitoken", "script", "--rotate")
    rotated = capsys.readouterr().out.strip()
    assert rotated != key and not Token.objects.filter(key=key).exists()

    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {rotated}")
    assert client.get("/api/agents/alpha/").status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/agents/alpha/").status_code == 401


def test_createapitoken_refuses_unknown_users():
    with pytest.raises(CommandError, match="No user 'ghost'"):
        call_command("createapitoken", "ghost")
