"""Writing an agent's runner state, always together with its django-q2 schedule row."""

from runner import scheduling
from runner.models import Agent


def save_state(agent, *fields):
    """Save the given state fields and bring the agent's Schedule row in step, in the caller's
    transaction, so the two can never disagree."""
    agent.save(update_fields=[*fields, "updated_at"])
    scheduling.sync_schedule(agent)


def copy_agent(target, source):
    """Give the caller's agent instance the values the service wrote on its locked copy."""
    for field in Agent._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
