"""`manage.py qcluster`: django-q2's command, starting a cluster that takes a task only when one of
its workers is free (runner.cluster), so a busy cluster never holds cycles another could start.

`runner` is listed before `django_q` in INSTALLED_APPS, so this command replaces django-q2's under
the same name and options. RUNNER_WORKER_GATE=0 leaves the gate out. Either way the cluster stops
on SIGTERM (to it or to its whole process group) within RUNNER_SHUTDOWN_GRACE_SECONDS, with no
cycle left `running` (runner.cluster_stop).
"""

import os

from django.conf import settings
from django_q.management.commands import qcluster

from runner.cluster import GatedCluster
from runner.cluster_stop import GracefulCluster
from runner.conf import conf


class Command(qcluster.Command):
    help = "Starts a Django Q Cluster that takes a task only when one of its workers is free."

    def handle(self, *args, **options):
        # As django-q2's own handle(), with our cluster, which then serves until a signal.
        settings.SECRET_KEY  # noqa: B018 (refuse to start without the key that signs tasks)
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        cluster = GatedCluster() if conf.RUNNER_WORKER_GATE else GracefulCluster()
        cluster.start()
        if options.get("run_once", False):
            cluster.stop()
        else:
            cluster.serve()
