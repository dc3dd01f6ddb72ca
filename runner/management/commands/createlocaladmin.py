"""Create (once) the local admin user for `make run`, and print how to log in."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create a local superuser 'admin' if none exists and print its login."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, **options):
        User = get_user_model()
        username = options["username"]
        password = os.environ.get("LOCAL_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        user, created = User.objects.get_or_create(
            username=username, defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            user.set_password(password)
            user.save()
        elif not user.check_password(password):
            self.stdout.write(
                f"Admin user {username!r} exists with a password that is not the one in .env; "
                f"change it with: python manage.py changepassword {username}"
            )
            return
        # The port the Procfile's web process serves on (`make run`): WEB_PORT, else 8000.
        port = os.environ.get("WEB_PORT") or "8000"
        self.stdout.write(
            f"Local admin: http://127.0.0.1:{port}/admin/  user {username!r}  password {password!r}"
        )
