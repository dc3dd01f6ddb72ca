"""Who asked for a control action, and from where: passed into every service call.

Built in one place for every interface: `from_request` for the admin and the API (the request id
is the one RequestIdMiddleware put on the request, so an audit row, the log lines and the
`X-Request-ID` header agree), `cli` for management commands, `scheduler` and `system` for the
runner itself.
"""

import getpass
import ipaddress
import uuid
from dataclasses import dataclass

from runner.choices import AuditSource


def client_ip(request):
    """The peer address as Django saw it (None when it is not an IP, e.g. a unix socket)."""
    address = request.META.get("REMOTE_ADDR", "").split("%", 1)[0]  # no IPv6 zone in the trail
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


@dataclass(frozen=True)
class Actor:
    user: object | None
    source: str
    username: str = ""
    client_ip: str | None = None
    request_id: str = ""

    @classmethod
    def from_request(cls, request, *, source):
        """The request's user, client IP and request id (admin and API)."""
        user = request.user
        return cls(
            user=user,
            source=source,
            username=user.get_username() if user is not None else "",
            client_ip=client_ip(request),
            # Set by RequestIdMiddleware; a request built without it (tests) still gets an id.
            request_id=getattr(request, "request_id", "") or uuid.uuid4().hex,
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
