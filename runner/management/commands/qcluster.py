"""`manage.py qcluster`: django-q2's command, starting a cluster that takes a task only when one of
its workers is free (runner.cluster), so a busy cluster never holds cycles another could start.

`runner` is listed before `django_q` in INSTALLED_APPS, so this command replaces django-q2's under
the same name and options. RUNNER_WORKER_GATE=0 starts django-q2's own cluster instead.
"""

import os

from django.conf import settings
from django_q.management.commands import qcluster

from runner.cluster import GatedCluster
from runner.conf import conf


class Command(qcluster.Command):
    help = "Starts a Django Q Cluster that takes a task only when one of its workers is free."

    def handle(self, *args, **options):
        if not conf.RUNNER_WORKER_GATE:
            return super().handle(*args, **options)
        # As django-q2's own handle(), with our cluster.
        settings.SECRET_KEY  # noqa: B018 (refuse to start without the key that signs tasks)
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        cluster = GatedCluster()
        cluster.start()
        if options.get("run_once", False):
            cluster.stop()
