"""Writing an agent's runner state, always together with its django-q2 schedule row."""

from runner.models import Agent
from runner.services.schedule_rows import queue_due_cycle, write_schedule


def save_state(agent, *fields, queue_due=False):
    """Save the given state fields and bring the agent's Schedule row in step, in the caller's
    transaction, so the two can never disagree. With `queue_due` the agent's next slot is due now
    (start, resume): its cycle is queued and the row moves on to the following slot."""
    agent.save(update_fields=[*fields, "updated_at"])
    if queue_due:
        queue_due_cycle(agent)
    else:
        write_schedule(agent)


def copy_agent(target, source):
    """Give the caller's agent instance the values the service wrote on its locked copy."""
    for field in Agent._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
