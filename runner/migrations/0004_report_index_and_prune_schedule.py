"""An index for reports and run lists over all agents, and the retention schedule.

The schedule step creates (or removes) the daily django-q2 prune schedule to match the setting
RUNNER_PRUNE_RUNS_OLDER_THAN; it is idempotent, and `manage.py pruneruns --sync-schedule` does the
same after the setting changes.
"""

from django.db import migrations, models


def sync_prune_schedule(apps, schema_editor):
    from runner.retention import ensure_prune_schedule

    ensure_prune_schedule(apps.get_model("django_q", "Schedule"))


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
        migrations.RunPython(sync_prune_schedule, migrations.RunPython.noop),
    ]
