"""Throttle counts that hold under concurrency, in the cache every web process shares, each
counted and checked in one round trip.

A user's window opens with its first request and lasts the rate's period; every request in it
adds one to the count, and a request is let through while the count is within the rate. When the
window has ended, the next request opens a new one. The count and the window's end are read and
written as one atomic step where the cache lives, so two workers can never both take the last
place, and a refused request costs no more than an allowed one:

- database cache (PostgreSQL, SQLite): one `INSERT … ON CONFLICT DO UPDATE … RETURNING` on the
  cache table (the row's `expires` is the window's end, so the cache's own culling drops it);
- Redis: one MULTI pipeline (`SET NX EX`, `INCR`, `PTTL`);
- anything else (the per-process local-memory cache): a lock inside this process.

The rows are written in this module's own format (an integer, not a pickle), under version 2 of
the key, so the cache API never reads one and rows of the earlier format are never misread.
"""

import threading
import time
from datetime import UTC, timedelta

from django.core.cache.backends.db import DatabaseCache
from django.core.cache.backends.redis import RedisCache
from django.db import connections, router
from django.utils import timezone
from django.utils.dateparse import parse_datetime

KEY_VERSION = 2
_process_lock = threading.Lock()

UPSERT = """
INSERT INTO {table} (cache_key, value, expires) VALUES (%s, '1', %s)
ON CONFLICT (cache_key) DO UPDATE SET
    value = CASE WHEN {table}.expires <= %s THEN '1'
                 ELSE CAST(CAST({table}.value AS INTEGER) + 1 AS TEXT) END,
    expires = CASE WHEN {table}.expires <= %s THEN excluded.expires ELSE {table}.expires END
RETURNING value, expires
"""


def count_request(cache, key, period) -> tuple[int, float]:
    """Count one request against `key`: (requests in the current window, seconds it has left)."""
    if isinstance(cache, DatabaseCache):
        return _count_in_table(cache, key, period)
    if isinstance(cache, RedisCache):
        return _count_in_redis(cache, key, period)
    return _count_in_process(cache, key, period)


def _count_in_table(cache, key, period):
    alias = router.db_for_write(cache.cache_model_class)
    connection = connections[alias]
    now = timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    sql = UPSERT.format(table=connection.ops.quote_name(cache._table))
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                cache.make_and_validate_key(key, version=KEY_VERSION),
                adapt(now + timedelta(seconds=period)),
                adapt(now),
                adapt(now),
            ],
        )
        value, expires = cursor.fetchone()
    if isinstance(expires, str):  # SQLite answers with the column's text
        expires = parse_datetime(expires)
    if timezone.is_naive(expires):
        expires = expires.replace(tzinfo=UTC)
    return int(value), max((expires - now).total_seconds(), 0.0)


def _count_in_redis(cache, key, period):
    client = cache._cache.get_client(key, write=True)
    redis_key = cache.make_and_validate_key(key, version=KEY_VERSION)
    pipeline = client.pipeline(transaction=True)
    pipeline.set(redis_key, 0, ex=max(int(period), 1), nx=True)
    pipeline.incr(redis_key)
    pipeline.pttl(redis_key)
    _, count, milliseconds = pipeline.execute()
    return int(count), max(milliseconds, 0) / 1000


def _count_in_process(cache, key, period):
    with _process_lock:
        now = time.time()
        count, ends = cache.get(key, (0, 0.0), version=KEY_VERSION)
        if ends <= now:
            count, ends = 0, now + period
        cache.set(key, (count + 1, ends), timeout=max(ends - now, 1), version=KEY_VERSION)
    return count + 1, ends - now
