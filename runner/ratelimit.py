"""Throttle counts that hold under concurrency, in the cache every web process shares.

DRF's SimpleRateThrottle reads a user's request history from the cache, decides, and writes it
back. Two workers that read at the same moment both see room and both let their request through,
so a burst overshoots the rate even with a shared cache. `AtomicThrottleMixin` holds a lock on the
throttle key from that read to that write. The lock matches where the cache lives:

- database cache on PostgreSQL: a transaction-scoped advisory lock on the key's hash;
- database cache on SQLite: the write lock that `BEGIN IMMEDIATE` takes (the settings make every
  SQLite transaction IMMEDIATE), released at commit;
- Redis: a Redis lock beside the key (expires by itself if its holder dies);
- anything else (the per-process local-memory cache): a lock inside this process.
"""

import hashlib
import threading
from contextlib import ExitStack, contextmanager

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.db import DatabaseCache
from django.core.cache.backends.redis import RedisCache
from django.db import connections, router, transaction

# First half of the two-key advisory lock, so these locks never meet another user's single keys.
ADVISORY_NAMESPACE = 0x52544C  # "RTL"
REDIS_LOCK_SECONDS = 10  # a holder that died frees the key after this long
_process_lock = threading.Lock()


def _key_hash32(key):
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big", signed=True)


@contextmanager
def exclusive(cache, key):
    """Hold `key` of `cache` for this process, thread and every other web process."""
    if isinstance(cache, DatabaseCache):
        alias = router.db_for_write(cache.cache_model_class)
        with transaction.atomic(using=alias):
            connection = connections[alias]
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_advisory_xact_lock(%s, %s)",
                        [ADVISORY_NAMESPACE, _key_hash32(key)],
                    )
            yield
    elif isinstance(cache, RedisCache):
        client = cache._cache.get_client(key, write=True)
        lock_key = cache.make_and_validate_key(f"{key}:lock")
        with client.lock(lock_key, timeout=REDIS_LOCK_SECONDS, blocking_timeout=REDIS_LOCK_SECONDS):
            yield
    else:
        with _process_lock:
            yield


class AtomicThrottleMixin:
    """For a SimpleRateThrottle subclass: check and record a request as one step per key."""

    cache_alias = DEFAULT_CACHE_ALIAS

    @property
    def cache(self):
        return caches[self.cache_alias]

    def allow_request(self, request, view):
        with ExitStack() as self._held:
            return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        # SimpleRateThrottle asks for the key just before it reads the history: lock it there, and
        # keep it until allow_request returns (after the history is written back).
        key = super().get_cache_key(request, view)
        if key is not None:
            self._held.enter_context(exclusive(self.cache, key))
        return key
