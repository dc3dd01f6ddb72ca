"""The control throttle against a real gunicorn with several workers.

Each worker is its own process: a per-process cache would give every worker its own count, and
a user would get up to workers × the rate through. The counts live in the shared cache (the
database, or Redis with REDIS_URL), so exactly the rate gets through, one request after another
or in a concurrent burst, whichever worker answers.
"""

import os
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.http_server import ACCESS_LINE, running_server

pytestmark = pytest.mark.slow

LIMIT = 10
WORKERS = 4
SENT = 4 * LIMIT
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/4")
# A second user with its own token, for the concurrent burst (the throttle counts per user).
SECOND_USER = """
second, _ = get_user_model().objects.get_or_create(username="burst-user")
second.user_permissions.set(Permission.objects.filter(content_type__app_label="runner"))
print(Token.objects.get_or_create(user=second)[0].key)
"""


def stop_default_agent(base_url, token):
    """One control request on a new connection (so the kernel may hand it to any worker)."""
    headers = {"Authorization": f"Token {token}", "Connection": "close"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        response = client.post("/api/agents/default/stop/")
    return response.status_code, response.headers.get("Retry-After")


def send(base_url, token, concurrency):
    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda _: stop_default_agent(base_url, token), range(SENT)))


def redis_env():
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).flushdb()
    except redis.RedisError:
        pytest.skip(f"Redis is not reachable at {REDIS_URL} (set TEST_REDIS_URL)")
    return {"REDIS_URL": REDIS_URL}


@pytest.mark.parametrize("cache", ["database", "redis"])
def test_exactly_the_rate_gets_through_across_gunicorn_workers(cache):
    env = {"RUNNER_API_CONTROL_RATE": f"{LIMIT}/hour"}  # an hour: no window ends mid-test
    if cache == "redis":
        env.update(redis_env())
    with running_server(
        env=env, setup_code=SECOND_USER, workers=WORKERS, threads=2, access_log=True
    ) as server:
        sequential = send(server.base_url, server.token, concurrency=1)
        burst = send(server.base_url, server.setup_output[-1], concurrency=16)
        log = server.log_path.read_text()

    for results in (sequential, burst):
        statuses = [status for status, _ in results]
        # The agent is stopped, so an allowed stop is refused (409): any other code is a bug.
        assert statuses.count(409) == LIMIT, statuses
        assert statuses.count(429) == SENT - LIMIT, statuses
        assert all(retry_after for status, retry_after in results if status == 429)
    # One after another, the first LIMIT get through and every later one is refused.
    assert [status for status, _ in sequential] == [409] * LIMIT + [429] * (SENT - LIMIT)
    # The requests really were spread: with one worker answering all of them, a per-process
    # count would pass this test too.
    workers = {pid for pid, method, path, _ in ACCESS_LINE.findall(log) if path.endswith("/stop/")}
    assert len(workers) >= 2, log[-3000:]
    if cache == "redis":
        import redis

        keys = redis.Redis.from_url(REDIS_URL).keys("agent-runner:*throttle_control_*")
        assert len(keys) == 2  # the counts were kept in Redis, one per user
