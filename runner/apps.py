import logging

from django.apps import AppConfig
from django.db.models.signals import post_migrate

logger = logging.getLogger(__name__)


def _sync_periodic_schedules(sender, using="default", **kwargs):
    """After every `migrate`: the periodic jobs' django-q2 schedules (runner.periodic)."""
    from django.db import connections

    from runner.periodic import sync_periodic_schedules

    if "django_q_schedule" in connections[using].introspection.table_names():
        sync_periodic_schedules(using=using)


def _create_cache_tables(sender, using="default", verbosity=1, **kwargs):
    """After every `migrate`: create the database cache table(s) the settings name, if missing.

    The API throttle counts live in the cache, shared by every web process; Django leaves its
    table to `createcachetable`, which this runs (idempotent, and a no-op for other backends).
    """
    from django.core.management import call_command

    call_command("createcachetable", database=using, verbosity=max(0, verbosity - 1))


def _worker_ready(sender, proc_name=None, **kwargs):
    """A qcluster worker process started: record a heartbeat so /healthz sees the cluster at once
    (the watchdog schedule then keeps it fresh every minute)."""
    from runner.monitoring import record_heartbeat

    try:
        record_heartbeat()
    except Exception:  # a database hiccup must not stop a worker from starting
        logger.exception("could not record the worker heartbeat")


class RunnerConfig(AppConfig):
    name = "runner"
    verbose_name = "Agent runner"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django_q.signals import post_spawn

        post_migrate.connect(_sync_periodic_schedules, sender=self)
        post_migrate.connect(_create_cache_tables, sender=self)
        post_spawn.connect(_worker_ready, dispatch_uid="runner.worker_ready")
