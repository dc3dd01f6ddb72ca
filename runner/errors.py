"""The runner's one domain error family. Interfaces map these to 409 / 400, admin messages, exit 1."""


class RunnerError(Exception):
    """A control request the runner refused. `state` is the agent's state when it was refused."""

    def __init__(self, message, *, state="", field=None):
        super().__init__(message)
        self.message = message
        self.state = state
        self.field = field


class TransitionRefused(RunnerError):
    """The request is not allowed from the agent's current state (or a cycle is in flight)."""


class InvalidInput(RunnerError):
    """A value is out of range or of the wrong type; `field` names it. `bound` is "min" or "max"
    when a whole number passed that limit (None otherwise)."""

    bound = None


class AgentNotFound(RunnerError):
    """No agent has that slug."""


class ClaimRefused(TransitionRefused):
    """A worker may not run this cycle (another is in flight, the agent is not running, ...)."""


class AgentLoadError(Exception):
    """The agent's kind is unknown or its class cannot be imported or built."""


class CycleStop(Exception):
    """Raised by `checkpoint()` to end a cycle early; subclasses say why."""

    status = "cancelled"


class CycleCancelled(CycleStop):
    status = "cancelled"


class CycleDeadlineExceeded(CycleStop):
    status = "timed_out"


class LeaseLost(CycleStop):
    """This worker no longer holds the run (it was reaped or fenced off); its result is discarded."""

    status = "abandoned"
