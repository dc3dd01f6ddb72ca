"""Who asked for a control action, and from where: passed into every service call."""

import getpass
from dataclasses import dataclass

from runner.models import AuditSource


@dataclass(frozen=True)
class Actor:
    user: object | None
    source: str
    username: str = ""
    client_ip: str | None = None
    request_id: str = ""

    @classmethod
    def for_user(cls, user, *, source, client_ip=None, request_id=""):
        return cls(
            user=user,
            source=source,
            username=user.get_username() if user is not None else "",
            client_ip=client_ip,
            request_id=request_id,
        )

    @classmethod
    def cli(cls):
        """The operating-system user who ran the command (no Django user is logged in there)."""
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = "unknown"
        return cls(user=None, source=AuditSource.CLI, username=name)

    @classmethod
    def scheduler(cls):
        return cls(user=None, source=AuditSource.SCHEDULER, username="")

    @classmethod
    def system(cls):
        return cls(user=None, source=AuditSource.SYSTEM, username="")
