"""Small agent kinds for tests: one that succeeds, one that raises, one slow and cooperative, one
that logs a line a step (the live tail), one that never calls checkpoint() (shutdown's grace).

Registered through RUNNER_EXTRA_AGENT_KINDS (tests/conftest.py sets it for this process and any
qcluster or server subprocess a test starts), exactly as a user would plug in their own kind.
"""

import time

from django.core.exceptions import ValidationError

TEST_AGENT_KINDS = {
    "test-ok": "tests.agent_kinds.SucceedingAgent",
    "test-fail": "tests.agent_kinds.FailingAgent",
    "test-slow": "tests.agent_kinds.SlowAgent",
    "test-chatty": "tests.agent_kinds.ChattyAgent",
    "test-stubborn": "tests.agent_kinds.StubbornAgent",
}


class SucceedingAgent:
    """Returns a summary built from its parameters."""

    @classmethod
    def validate_parameters(cls, parameters):
        value = parameters.get("value", 1)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValidationError({"value": "value must be an integer"})
        return {"value": value}

    def run(self, context):
        context.logger.info("counting %s", context.parameters["value"])
        context.checkpoint()
        return {"value": context.parameters["value"], "mode": context.trading_mode}


class BoomError(RuntimeError):
    pass


class FailingAgent:
    def run(self, context):
        context.logger.info("about to fail")
        raise BoomError("the agent exploded on purpose")


class SlowAgent:
    """Sleeps `seconds` in small steps, calling checkpoint() between them."""

    @classmethod
    def validate_parameters(cls, parameters):
        seconds = parameters.get("seconds", 2.0)
        step = parameters.get("step", 0.05)
        if not isinstance(seconds, int | float) or seconds < 0:
            raise ValidationError({"seconds": "seconds must be a non-negative number"})
        return {"seconds": float(seconds), "step": float(step)}

    def run(self, context):
        deadline = time.monotonic() + context.parameters["seconds"]
        steps = 0
        while time.monotonic() < deadline:
            context.checkpoint()
            time.sleep(context.parameters["step"])
            steps += 1
        return {"steps": steps}


def _number(parameters, name, default):
    value = parameters.get(name, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ValidationError({name: f"{name} must be a non-negative number"})
    return float(value)


class ChattyAgent:
    """Logs "step N of M" every `every` seconds for `steps` steps, with a checkpoint between."""

    @classmethod
    def validate_parameters(cls, parameters):
        return {
            "steps": int(_number(parameters, "steps", 5)),
            "every": _number(parameters, "every", 0.5),
        }

    def run(self, context):
        steps = context.parameters["steps"]
        for step in range(1, steps + 1):
            context.checkpoint()
            context.logger.info("step %s of %s", step, steps)
            time.sleep(context.parameters["every"])
        return {"steps": steps}


class StubbornAgent:
    """Sleeps `seconds` in one go, never calling checkpoint(): only a kill stops it early."""

    @classmethod
    def validate_parameters(cls, parameters):
        return {"seconds": _number(parameters, "seconds", 60)}

    def run(self, context):
        context.logger.info("sleeping %s s without a checkpoint", context.parameters["seconds"])
        time.sleep(context.parameters["seconds"])
        return {"slept": context.parameters["seconds"]}
