"""The production role split on a real PostgreSQL: the owner migrates, the app role only works.

A fresh database owned by a fresh owner role is migrated by that owner, `grantapprole --apply`
gives a fresh login role the app's rights, and then, connected as that app role: the app's own
commands work (a cycle, a start that writes a django-q2 schedule and task, the cache), audit
events can be added and read, and every way of changing or removing them is refused."""

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

ROOT = Path(__file__).resolve().parents[2]


def test_deploy_sql_is_the_commands_output(capsys):
    """deploy/postgres-roles.sql is what `grantapprole agent_runner_app` prints (no drift)."""
    call_command("grantapprole", "agent_runner_app")
    printed = capsys.readouterr().out
    assert (ROOT / "deploy" / "postgres-roles.sql").read_text() == printed


def test_grantapprole_takes_plain_role_names_only():
    """A role name goes into SQL (and into the printed script) as it is: nothing else passes."""
    with pytest.raises(CommandError, match="not a plain role name"):
        call_command("grantapprole", 'x"; DROP TABLE runner_auditevent; --')
    with pytest.raises(CommandError, match="not a plain role name"):
        call_command("grantapprole", "app", "--owner", "Owner")


@pytest.mark.postgres
def test_grantapprole_refuses_a_role_that_could_undo_it(db):
    from django.db import connection

    with pytest.raises(CommandError, match="No role 'ar_nobody'"):
        call_command("grantapprole", "ar_nobody", "--apply")
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        me = cursor.fetchone()[0]
    with pytest.raises(CommandError, match="superuser|owns the tables"):
        call_command("grantapprole", me, "--apply")
