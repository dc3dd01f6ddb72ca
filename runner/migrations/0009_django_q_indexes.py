"""Indexes django-q2's own tables lack for the runner's lookups.

Every claim and dispatcher pass finds an agent's Schedule row by `name` (`runner:agent:<id>`), and
the ORM broker looks for tasks by `(key, lock)` on every poll of every cluster: without these
both are sequential scans. django-q2's migrations do not know these indexes, so they are plain
SQL (the same on PostgreSQL and SQLite), created if missing and dropped on the way back.
"""

from django.db import migrations

INDEXES = [
    ("runner_djq_schedule_name_idx", "django_q_schedule", '"name"'),
    ("runner_djq_ormq_key_lock_idx", "django_q_ormq", '"key", "lock"'),
]


class Migration(migrations.Migration):
    dependencies = [
        ("runner", "0008_budgets_and_config_versions"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [
        migrations.RunSQL(
            sql=f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ({columns})',
            reverse_sql=f'DROP INDEX IF EXISTS "{name}"',
        )
        for name, table, columns in INDEXES
    ]
