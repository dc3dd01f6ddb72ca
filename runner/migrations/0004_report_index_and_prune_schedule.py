"""An index for reports and run lists over all agents.

This migration once also created the daily prune schedule by importing live code; the periodic
jobs' schedule rows are now kept in step after every `migrate` by runner.periodic, so migrations
never depend on modules that may move.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("runner", "0003_alerts_and_worker_heartbeat"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="cyclerun",
            index=models.Index(fields=["queued_at", "id"], name="cyclerun_queued_id"),
        ),
    ]
