"""Who may do what over HTTP: view, control and configuration are separate permissions."""

from rest_framework.permissions import BasePermission

from runner.auth import load_permissions

VIEW = "runner.view_agent"
CONTROL = "runner.control_agent"
ADD = "runner.add_agent"
CHANGE = "runner.change_agent"
DELETE = "runner.delete_agent"


class RunnerPermission(BasePermission):
    """Authenticated, and holding the permission the view names for this request.

    Views implement `required_permission(request)`; anonymous requests get 401 (DRF answers
    NotAuthenticated when no authenticator accepted the request). The user's permissions are
    read in one query and kept on the user for the rest of the request (runner.auth).
    """

    def has_permission(self, request, view):
        user = request.user
        if not user or not user.is_authenticated:
            return False
        load_permissions(user)
        return user.has_perm(view.required_permission(request))
