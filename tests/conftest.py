import json
import os
from pathlib import Path

import pytest
from django.db import connection

from tests.agent_kinds import TEST_AGENT_KINDS

E2E_DIR = Path(__file__).resolve().parent / "e2e"

# Set before Django reads settings, so this process and every subprocess a test starts (qcluster,
# live servers) know the test agent kinds, the way a user registers a kind of their own.
os.environ.setdefault("RUNNER_EXTRA_AGENT_KINDS", json.dumps(TEST_AGENT_KINDS))
os.environ.setdefault(
    "DJANGO_SECRET_KEY", "tests-only-secret-key-not-for-production-use-0123456789"
)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """On SQLite, keep the test database in a file (not in memory), so the qcluster and
    dispatcher subprocesses that scheduling tests start can open the same database."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        test_settings = database.setdefault("TEST", {})
        if not test_settings.get("NAME"):  # Django fills the key in with None
            test_settings["NAME"] = str(Path(settings.BASE_DIR) / "db.sqlite3.test")


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    vendor = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        # tests/e2e holds every test with real processes, a browser or a live server.
        if E2E_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.slow)
        if "postgres" in item.keywords and vendor != "postgresql":
            item.add_marker(skip_pg)


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"


@pytest.fixture(autouse=True)
def test_agent_kinds(settings):
    """Register the test kinds in this process (subprocesses get them from the environment)."""
    settings.RUNNER_AGENT_KINDS = {**settings.RUNNER_AGENT_KINDS, **TEST_AGENT_KINDS}
