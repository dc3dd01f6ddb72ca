import json
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import settings as hypothesis_settings

from tests.agent_kinds import TEST_AGENT_KINDS

# `make test` draws the same examples on every run and every machine: derandomized, and so with no
# example database (which would replay whatever earlier runs here happened to find). `make fuzz`
# loads "fuzz" (--hypothesis-profile=fuzz): random seeds, many more examples, and failures kept
# in .hypothesis/ (git-ignored) and tried first next time. The API fuzz follows the same profile.
hypothesis_settings.register_profile("ci", derandomize=True)
hypothesis_settings.register_profile("fuzz", max_examples=1000)

E2E_DIR = Path(__file__).resolve().parent / "e2e"

# Set before Django reads settings, so this process and every subprocess a test starts (qcluster,
# live servers) know the test agent kinds, the way a user registers a kind of their own.
os.environ.setdefault("RUNNER_EXTRA_AGENT_KINDS", json.dumps(TEST_AGENT_KINDS))
os.environ.setdefault(
    "DJANGO_SECRET_KEY", "tests-only-secret-key-not-for-production-use-0123456789"
)


def pytest_configure(config):
    if not config.getoption("--hypothesis-profile"):
        hypothesis_settings.load_profile("ci")


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


DATABASE_FIXTURES = {
    "db",
    "transactional_db",
    "django_db_reset_sequences",
    "django_db_serialized_rollback",
    "live_server",
}


@pytest.fixture(autouse=True)
def fresh_cache(request):
    """Every test that uses the database starts with an empty cache.

    The cache (throttle counts) is a table of the test database, or Redis with REDIS_URL: user ids
    repeat between tests, and neither a transactional test's flush nor Redis rolls counts back.
    """
    if request.node.get_closest_marker("django_db") or not DATABASE_FIXTURES.isdisjoint(
        request.fixturenames
    ):
        request.getfixturevalue("db")  # the test's database (transactional if it asked for that)
        empty_cache()
    yield


def empty_cache():
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    backend = caches["default"]
    if isinstance(backend, RedisCache):
        # Only this project's keys: the Redis database may be the django-q2 broker's too.
        client = backend._cache.get_client(write=True)
        keys = list(client.scan_iter(backend.make_key("*")))
        if keys:
            client.delete(*keys)
    else:
        backend.clear()


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"


@pytest.fixture(autouse=True)
def test_agent_kinds(settings):
    """Register the test kinds in this process (subprocesses get them from the environment)."""
    settings.RUNNER_AGENT_KINDS = {**settings.RUNNER_AGENT_KINDS, **TEST_AGENT_KINDS}


BUDGET_ZONES = ("UTC", "Etc/GMT-12", "Etc/GMT+12", "Etc/GMT-6", "Etc/GMT+6")


@pytest.fixture
def midday_zone(settings):
    """Budget days in the zone where it is now furthest from midnight, so a budget test never
    straddles the end of a budget day, whatever time it runs."""

    def distance_to_midnight(zone):
        local = timezone.now().astimezone(ZoneInfo(zone))
        seconds = local.hour * 3600 + local.minute * 60 + local.second
        return min(seconds, 86400 - seconds)

    settings.RUNNER_BUDGET_TIMEZONE = max(BUDGET_ZONES, key=distance_to_midnight)
    return settings.RUNNER_BUDGET_TIMEZONE
