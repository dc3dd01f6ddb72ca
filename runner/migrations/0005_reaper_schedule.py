"""Once registered a separate lease-reaper schedule by importing live code.

The watchdog job (runner.periodic, synced after every `migrate`) now reaps expired leases, and
the sync removes the old `runner:reap-expired-leases` row where an earlier version created it.
Kept, empty, so databases that applied it and fresh ones share one migration history.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("runner", "0004_report_index_and_prune_schedule"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = []
