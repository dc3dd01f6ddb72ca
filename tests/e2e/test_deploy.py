"""`check --deploy` with the documented production environment (deploy/production.env.example)."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
EXAMPLE = BASE_DIR / "deploy" / "production.env.example"

pytestmark = pytest.mark.slow


def documented_production_env():
    values = {}
    for line in EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value.replace("CHANGE-ME", secrets.token_urlsafe(50))
    return values


def deploy_check(overrides):
    # Start from a clean environment so nothing from the developer's shell or the test run leaks in.
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **overrides}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_documented_production_environment_passes_the_deploy_check():
    result = deploy_check(documented_production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_the_check_fails_without_the_https_settings():
    """The same environment without DJANGO_HTTPS is not production-safe, and the check says so."""
    env = documented_production_env()
    del env["DJANGO_HTTPS"]
    result = deploy_check(env)
    assert result.returncode != 0
    for check_id in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check_id in result.stderr + result.stdout
