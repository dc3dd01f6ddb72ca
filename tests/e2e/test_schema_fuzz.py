"""Schemathesis against a real HTTP server: positive and negative data, every check on.

The server is gunicorn serving the project in a subprocess (its own SQLite file, 127.0.0.1, a
port the OS picks), and schemathesis runs as its own process, as any client would. It must find
no 5xx, no undocumented status code or header, no response that breaks the schema, no accepted
negative data and no operation that works without credentials.

Under `make test` every run sends the same requests, on every machine: a fixed Hypothesis seed, a
fixed PYTHONHASHSEED for the schemathesis process (its negative cases are drawn by iterating
sets of strings, whose order follows the hash seed: with `--hypothesis-derandomize` alone, two
runs differed in about 75 of 422 requests, across 11 operations), and no example database
(Hypothesis' default would replay what earlier runs on this machine found). `make fuzz` explores instead: a random
seed (printed, and given back as API_FUZZ_SEED to repeat a run), more examples, and a database
under .hypothesis/ so that what failed is tried first next time.
"""

import os
import random
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import settings as hypothesis_settings

from tests.support.http_server import BASE_DIR, running_server

CI_SEED = 20261201
CI_EXAMPLES = 15
FUZZ_EXAMPLES = 100
SETUP = """
from django.conf import settings
from runner.models import Agent
Agent.objects.filter(slug=settings.RUNNER_DEFAULT_AGENT).update(kind="test-ok")
Agent.objects.get_or_create(slug="fuzz", defaults={"name": "Fuzz", "kind": "test-ok"})
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(session.session_key)
"""


@dataclass(frozen=True)
class FuzzRun:
    """How schemathesis draws its cases: fixed under `make test`, random under `make fuzz`."""

    seed: int
    examples: int
    database: str  # "none", or a directory for Hypothesis' example database
    exploring: bool

    @classmethod
    def for_this_session(cls):
        exploring = hypothesis_settings.get_current_profile_name() == "fuzz"
        examples = os.environ.get("API_FUZZ_EXAMPLES")
        if not exploring:
            return cls(CI_SEED, int(examples or CI_EXAMPLES), "none", False)
        seed = int(os.environ.get("API_FUZZ_SEED") or random.SystemRandom().getrandbits(32))
        database = str(BASE_DIR / ".hypothesis" / "api-fuzz")
        return cls(seed, int(examples or FUZZ_EXAMPLES), database, True)

    @property
    def hash_seed(self):
        return str(self.seed % 2**32)  # PYTHONHASHSEED's range; one number repeats a run

    @property
    def timeout(self):
        return 120 + 12 * self.examples

    def describe(self):
        repeat = f"make fuzz API_FUZZ_SEED={self.seed} API_FUZZ_EXAMPLES={self.examples}"
        if self.exploring:
            return f"random seed {self.seed}; repeat with: {repeat}"
        return f"fixed seed {self.seed}, {self.examples} examples (make test)"


def schemathesis(base_url, token, session_key, *extra, run=None):
    """Run the schemathesis CLI against base_url with every check; returns the finished process."""
    run = run or FuzzRun.for_this_session()
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{base_url}/api/schema/",
        "--base-url", base_url,
        # Both schemes the schema declares are given, so `ignored_auth` can take each away.
        "--header", f"Authorization: Token {token}",
        "--set-cookie", f"sessionid={session_key}",
        "--checks", "all",
        "--data-generation-method", "all",
        "--hypothesis-max-examples", str(run.examples),
        "--hypothesis-seed", str(run.seed),
        "--hypothesis-database", run.database,
        "--hypothesis-deadline", "None",
        "--hypothesis-suppress-health-check", "all",
        "--request-timeout", "20000",
        "--no-color",
        "--show-trace",
        *extra,
    ]  # fmt: skip
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=run.timeout,
        env={
            **os.environ,
            "PYTHONHASHSEED": run.hash_seed,
            "SCHEMATHESIS_TELEMETRY": "false",
            "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks",
            "PYTHONPATH": str(BASE_DIR),
            "NO_COLOR": "1",
        },
    )


def assert_clean(done, server, run):
    log = server.log_path.read_text()
    errors = log[log.find("Traceback") :][:6000] if "Traceback" in log else ""
    report = done.stdout[-20000:] + done.stderr[-3000:] + "\nserver log:\n" + errors
    report += f"\nschemathesis: {run.describe()}"
    assert done.returncode == 0, report
    assert " passed" in done.stdout.splitlines()[-1], report
    assert "failed" not in done.stdout.splitlines()[-1], report


@pytest.fixture(scope="module")
def fuzz_server():
    env = {
        "RUNNER_API_RUN_ONCE_GRACE_SECONDS": "0",
        "RUNNER_API_RUN_ONCE_WAIT_SECONDS": "2",
        "RUNNER_API_CONTROL_RATE": "100000/min",
    }
    with running_server(env=env, setup_code=SETUP, username="fuzzer") as server:
        yield server


@pytest.mark.slow
@pytest.mark.fuzz
def test_schemathesis_finds_no_server_error_or_schema_violation(fuzz_server):
    server, run = fuzz_server, FuzzRun.for_this_session()
    credentials = (server.base_url, server.token, server.setup_output[-1])
    # Every operation, with generated path parameters (mostly unknown agents and ids).
    assert_clean(schemathesis(*credentials, run=run), server, run)
    # The per-agent and per-record operations again on records that exist, so they get
    # past the 404 (DELETE is left out here: it would remove the agent the rest needs).
    again = schemathesis(
        *credentials,
        "--include-path-regex", r"\{(slug|id)\}",
        "--exclude-method", "DELETE",
        "--set-path", "slug=fuzz",
        "--set-path", "id=1",
        run=run,
    )  # fmt: skip
    assert_clean(again, server, run)


# A multipart body's boundary is random per request (the HTTP client draws it), not a drawn case.
MULTIPART_BOUNDARY = re.compile(r"--[0-9a-f]{32}")


def sent_requests(cassette):
    """(method, URI, body) of every request a schemathesis run recorded, in order."""
    interactions = yaml.safe_load(cassette.read_text())["http_interactions"]
    return [
        (
            each["request"]["method"],
            each["request"]["uri"],
            MULTIPART_BOUNDARY.sub("--BOUNDARY", str(each["request"].get("body"))),
        )
        for each in interactions
    ]


@pytest.mark.slow
def test_make_tests_fuzz_sends_the_same_requests_every_run(fuzz_server, tmp_path):
    """Two runs with make test's settings, each its own process (so its own hash seed unless
    it is fixed), on operations whose negative cases depend on set order: same requests."""
    run = FuzzRun(CI_SEED, CI_EXAMPLES, "none", exploring=False)
    credentials = (fuzz_server.base_url, fuzz_server.token, fuzz_server.setup_output[-1])
    sent = []
    for attempt in ("first", "second"):
        cassette = tmp_path / f"{attempt}.yaml"
        schemathesis(
            *credentials,
            "--include-path-regex", r"^/api/(agent/pause|agents/\{slug\}/)$",
            "--include-method", "POST",
            "--include-method", "PATCH",
            "--set-path", "slug=fuzz",
            "--cassette-path", str(cassette),
            run=run,
        )  # fmt: skip
        sent.append(sent_requests(cassette))
    assert len(sent[0]) > 2 * CI_EXAMPLES  # both operations, positive and negative cases
    assert sent[0] == sent[1]
