"""Settings come from the environment with safe defaults."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from runner.models import Agent

ROOT = Path(__file__).resolve().parents[1]


def _check(env_overrides, tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DJANGO_SECRET_KEY", "DJANGO_DEBUG", "DATABASE_URL")
    }
    env["DJANGO_ENV_FILE"] = str(tmp_path / "no.env")  # not the checkout's own .env
    env.update(env_overrides)
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ.setdefault("
            "'DJANGO_SETTINGS_MODULE','config.settings'); django.setup(); "
            "from django.conf import settings; print(settings.DEBUG)",
        ],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )


def test_secret_key_is_required_when_debug_is_off(tmp_path):
    result = _check({}, tmp_path)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off" in result.stderr


def test_debug_is_off_unless_asked(tmp_path):
    result = _check({"DJANGO_SECRET_KEY": "x" * 50}, tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "False"
    result = _check({"DJANGO_DEBUG": "1"}, tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "True"


@pytest.mark.django_db
def test_migrate_leaves_the_default_agent(settings):
    agent = Agent.objects.get(slug=settings.RUNNER_DEFAULT_AGENT)
    assert agent.kind == "forecaster" and agent.state == "stopped"


@pytest.mark.django_db
def test_sqlite_runs_in_wal_mode_with_immediate_transactions():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert connection.settings_dict["OPTIONS"]["timeout"] >= 5
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        mode = cursor.fetchone()[0]
    # the in-memory test database cannot use WAL; a file database does (checked in the CLI test)
    assert mode in ("wal", "memory")


def test_every_declared_setting_is_documented_in_the_readme():
    """Each RUNNER_*, FORECASTER_* and agent setting is declared once (runner/conf.py,
    agents/conf.py) and a user finds it in the README."""
    from agents.conf import conf as agents_conf
    from runner.conf import conf as runner_conf

    readme = (ROOT / "README.md").read_text()
    declared = [*runner_conf.declared, *agents_conf.declared]
    assert len(declared) == len(set(declared))
    assert [name for name in declared if f"`{name}`" not in readme] == []


def test_no_code_reads_a_runner_setting_around_the_conf_module():
    offenders = []
    for path in [*ROOT.glob("runner/**/*.py"), *ROOT.glob("agents/**/*.py")]:
        if "migrations" in path.parts or path.name == "conf.py":
            continue  # conf.py is the one reader; migrations read the settings they ran with
        text = path.read_text()
        if "getattr(settings," in text or "settings.RUNNER_" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def _manage(env_overrides, tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"DJANGO_ENV_FILE": str(tmp_path / "no.env"), "PYTHONPATH": str(ROOT)})
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cache_is_redis_when_redis_url_is_set(tmp_path):
    code = "from django.conf import settings; c = settings.CACHES['default']; "
    code += "print(c['BACKEND'], c['LOCATION'])"
    redis_url = {"REDIS_URL": "redis://cache.internal:6379/2"}
    with_redis = _manage(redis_url, tmp_path, "shell", "--no-imports", "-c", code)
    assert with_redis.stdout.split() == [
        "django.core.cache.backends.redis.RedisCache",
        "redis://cache.internal:6379/2",
    ]
    without = _manage({}, tmp_path, "shell", "--no-imports", "-c", code)
    assert without.stdout.split() == ["django.core.cache.backends.db.DatabaseCache", "runner_cache"]


def test_django_q2_keeps_its_cluster_status_out_of_the_shared_cache():
    """Each cluster saves its status twice a second: in its own memory, not a database write."""
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache
    from django_q.conf import Conf

    assert isinstance(caches[Conf.CACHE], LocMemCache)
    assert Conf.CACHE != "default"
