"""`manage.py grantapprole ROLE [--owner OWNER] [--apply]`: the app role's rights on PostgreSQL.

Prints the SQL by default (to review, or to run with psql); --apply runs it here, in one
transaction, on the database this process connects to, as the role it connects as (the owner).
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from runner import dbroles
from runner.models import AuditEvent


class Command(BaseCommand):
    help = (
        "Give ROLE the rights the web and qcluster processes need: every table, but only INSERT "
        "and SELECT on the audit trail. Run it as the owner of the tables after every migrate. "
        "Prints the SQL unless --apply."
    )

    def add_arguments(self, parser):
        parser.add_argument("role", help="The role the app connects as (create it first).")
        parser.add_argument(
            "--owner",
            help="The role that owns the tables and runs migrate (default: the owner of the "
            "audit table when applying; printed SQL without it applies to the role running it).",
        )
        parser.add_argument(
            "--apply", action="store_true", help="Run the SQL now instead of printing it."
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args, role, owner, apply, database, **options):
        try:
            dbroles.check_role_name(role)
            if owner:
                dbroles.check_role_name(owner)
        except ValueError as error:
            raise CommandError(str(error)) from None
        if not apply:
            self.stdout.write(dbroles.grant_script(role, owner))
            return
        connection = connections[database]
        if connection.vendor != "postgresql":
            raise CommandError("Roles and grants are for PostgreSQL; this database is not.")
        with transaction.atomic(using=database), connection.cursor() as cursor:
            owner = owner or self._table_owner(cursor)
            self._check_roles(cursor, role, owner)
            for statement in dbroles.grant_statements(role, owner):
                cursor.execute(statement)
        self.stdout.write(
            f"Granted {role!r} the app's rights (the audit trail: INSERT and SELECT only); "
            f"tables {owner!r} creates later get them too."
        )

    def _table_owner(self, cursor):
        """The role that ran `migrate`: the owner of the audit trail."""
        cursor.execute(
            "SELECT tableowner FROM pg_tables WHERE schemaname = 'public' AND tablename = %s",
            [AuditEvent._meta.db_table],
        )
        found = cursor.fetchone()
        if found is None:
            raise CommandError("No audit table here: run `python manage.py migrate` first.")
        return found[0]

    def _check_roles(self, cursor, role, owner):
        """Refuse a grant that would not hold: no such role, one that can undo it, or a grantor
        whose GRANT would only warn (not the owner, not a superuser)."""
        cursor.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
        me, superuser = cursor.fetchone()
        if me != owner and not superuser:
            raise CommandError(
                f"Run this as the owner of the tables ({owner!r}) or a superuser, not {me!r}."
            )
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [role])
        found = cursor.fetchone()
        if found is None:
            raise CommandError(
                f"No role {role!r}; create it first, e.g. CREATE ROLE {role} LOGIN PASSWORD '...';"
            )
        if found[0]:
            raise CommandError(f"{role!r} is a superuser: no grant can stop it.")
        if role == owner:
            raise CommandError(f"{role!r} owns the tables: the app must connect as another role.")
        cursor.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", [role, owner])
        if cursor.fetchone()[0]:
            raise CommandError(
                f"{role!r} is a member of the owner {owner!r}, so it has its rights."
            )
