"""The agent protocol: what the runner gives an agent for one cycle and what it expects back.

An agent kind is any class, registered in the RUNNER_AGENT_KINDS setting, with

    def run(self, context: CycleContext) -> dict      # JSON-serialisable summary

and optionally

    @classmethod
    def validate_parameters(cls, parameters: dict) -> dict   # raise ValidationError naming the key

Exceptions raised by `run` fail the cycle (type, message and traceback are stored); they never stop
the runner. Long agents call `context.checkpoint()` between steps so stop and deadlines take effect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class AgentProtocol(Protocol):
    def run(self, context: CycleContext) -> dict: ...


@dataclass
class CycleContext:
    """Everything one cycle may use. Built by runner.execution; agents only read it."""

    agent_slug: str
    run_id: int
    parameters: dict[str, Any]
    trading_mode: str
    deadline: datetime
    logger: Any
    checkpoint: Callable[[], None]
    now: Callable[[], datetime]
    extra: dict[str, Any] = field(default_factory=dict)
    # What is left of the agent's daily budgets (runner.budgets.BudgetAllowance), or None when
    # it has none: ask `llm_call_blocked(model)` before an LLM call and `paper_room()` before
    # opening a position, and report spending with `spend_llm(...)` and `spend_paper(usd)`.
    budget: Any = None
