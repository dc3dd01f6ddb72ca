"""`manage.py createapitoken USERNAME`: print the user's API token (created on first use)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = (
        "Print the API token of a user, creating it if needed. Send it as "
        "'Authorization: Token <token>'. --rotate replaces an existing token."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--rotate", action="store_true", help="Delete the user's token and make a new one."
        )

    def handle(self, *args, **options):
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: options["username"]})
        except User.DoesNotExist:
            raise CommandError(
                f"No user {options['username']!r}; create one first "
                "(python manage.py createsuperuser, or in the admin)."
            ) from None
        if not user.is_active:
            raise CommandError(f"User {options['username']!r} is inactive.")
        if options["rotate"]:
            Token.objects.filter(user=user).delete()
        token, _created = Token.objects.get_or_create(user=user)
        self.stdout.write(token.key)
