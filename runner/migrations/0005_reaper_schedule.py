"""Register the lease reaper as a django-q2 Schedule (every minute), so a cluster reaps expired
leases even when nobody claims a cycle or reads a status. Idempotent: re-running keeps one row."""

from django.db import migrations


def add_reaper_schedule(apps, schema_editor):
    from runner.scheduling import ensure_reaper_schedule

    ensure_reaper_schedule(apps.get_model("django_q", "Schedule"))


def remove_reaper_schedule(apps, schema_editor):
    from runner.scheduling import REAPER_SCHEDULE_NAME

    apps.get_model("django_q", "Schedule").objects.filter(name=REAPER_SCHEDULE_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("runner", "0004_report_index_and_prune_schedule"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(add_reaper_schedule, remove_reaper_schedule)]
