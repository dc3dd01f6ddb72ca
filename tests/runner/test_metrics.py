from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from runner import monitoring
from tests.factories import AgentFactory, CycleRunFactory

pytestmark = pytest.mark.django_db


def scrape(client, **headers):
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    families = {f.name: f for f in text_string_to_metric_families(response.content.decode())}
    return response, families


def sample(families, family, name, **labels):
    matches = [
        s.value
        for s in families[family].samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(matches) == 1, (name, labels, matches)
    return matches[0]


def test_metrics_content_is_read_from_the_database(client):
    now = timezone.now()
    alpha = AgentFactory(
        slug="alpha",
        state="running",
        next_run=now + timedelta(minutes=1),
        consecutive_failures=2,
        run_count=5,
        success_count=3,
        error_count=2,
        last_success=now - timedelta(seconds=120),
    )
    AgentFactory(slug="beta", state="error")
    # durations 0.2 s, 3 s and 45 s; scheduled slot 4 s before the start
    for index, seconds in enumerate((0.2, 3, 45)):
        started = now - timedelta(minutes=10 + index)
        CycleRunFactory(
            agent=alpha,
            status="succeeded",
            slot=started - timedelta(seconds=4),
            queued_at=started,
            started_at=started,
            finished_at=started + timedelta(seconds=seconds),
            duration_ms=int(seconds * 1000),
            trigger="schedule",
        )
    CycleRunFactory(agent=alpha, status="failed", duration_ms=500, slot=None)
    monitoring.record_heartbeat(now - timedelta(seconds=30), worker="h:1")

    response, families = scrape(client)
    assert response["Content-Type"].startswith("text/plain")

    assert (
        sample(
            families,
            "agent_runner_agent_state",
            "agent_runner_agent_state",
            agent="alpha",
            state="running",
        )
        == 1
    )
    assert (
        sample(
            families,
            "agent_runner_agent_state",
            "agent_runner_agent_state",
            agent="alpha",
            state="error",
        )
        == 0
    )
    assert (
        sample(
            families,
            "agent_runner_agent_state",
            "agent_runner_agent_state",
            agent="beta",
            state="error",
        )
        == 1
    )
    assert (
        sample(
            families, "agent_runner_runs", "agent_runner_runs", agent="alpha", status="succeeded"
        )
        == 3
    )
    assert (
        sample(families, "agent_runner_runs", "agent_runner_runs", agent="alpha", status="failed")
        == 1
    )
    assert (
        sample(families, "agent_runner_runs", "agent_runner_runs", agent="beta", status="succeeded")
        == 0
    )
    assert (
        sample(
            families,
            "agent_runner_agent_cycles",
            "agent_runner_agent_cycles_total",
            agent="alpha",
            outcome="error",
        )
        == 2
    )
    assert (
        sample(
            families,
            "agent_runner_agent_consecutive_failures",
            "agent_runner_agent_consecutive_failures",
            agent="alpha",
        )
        == 2
    )
    since = sample(
        families,
        "agent_runner_agent_seconds_since_last_success",
        "agent_runner_agent_seconds_since_last_success",
        agent="alpha",
    )
    assert 119 <= since < 180
    # beta never succeeded: no sample rather than a made-up number
    assert not [
        s
        for s in families["agent_runner_agent_seconds_since_last_success"].samples
        if s.labels["agent"] == "beta"
    ]

    duration = "agent_runner_cycle_duration_seconds"
    assert (
        sample(families, duration, duration + "_bucket", agent="alpha", le="0.5") == 2
    )  # 0.2 s and 0.5 s
    assert sample(families, duration, duration + "_bucket", agent="alpha", le="5.0") == 3
    assert sample(families, duration, duration + "_bucket", agent="alpha", le="30.0") == 3
    assert sample(families, duration, duration + "_bucket", agent="alpha", le="60.0") == 4
    assert sample(families, duration, duration + "_bucket", agent="alpha", le="+Inf") == 4
    assert sample(families, duration, duration + "_count", agent="alpha") == 4
    assert sample(families, duration, duration + "_sum", agent="alpha") == pytest.approx(48.7)

    delay = "agent_runner_cycle_start_delay_seconds"
    assert (
        sample(families, delay, delay + "_bucket", agent="alpha", le="2.0") == 1
    )  # the failed run: 0 s
    assert sample(families, delay, delay + "_bucket", agent="alpha", le="5.0") == 4
    assert sample(families, delay, delay + "_sum", agent="alpha") == pytest.approx(12.0)

    age = sample(
        families,
        "agent_runner_cluster_heartbeat_age_seconds",
        "agent_runner_cluster_heartbeat_age_seconds",
    )
    assert 29 <= age < 90


def test_metrics_refused_outside_the_allowed_networks(client, settings):
    settings.RUNNER_METRICS_ALLOWED_IPS = ["127.0.0.1/32"]
    settings.RUNNER_METRICS_TOKEN = ""
    refused = client.get("/metrics", REMOTE_ADDR="10.1.2.3")
    assert refused.status_code == 403
    assert "RUNNER_METRICS_ALLOWED_IPS" in refused.json()["detail"]
    assert b"agent_runner" not in refused.content
    settings.RUNNER_METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_metrics_bearer_token(client, settings):
    settings.RUNNER_METRICS_ALLOWED_IPS = []
    settings.RUNNER_METRICS_TOKEN = "s3cret-scrape-token"
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    assert ok.status_code == 200
    assert b"agent_runner_agent_state" in ok.content


def test_a_wrong_token_is_refused_even_from_an_allowed_address(client, settings):
    settings.RUNNER_METRICS_ALLOWED_IPS = ["127.0.0.1/32"]
    settings.RUNNER_METRICS_TOKEN = "right"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
