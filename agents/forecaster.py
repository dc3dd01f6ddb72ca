"""Temporary alias: config/settings.py still names `agents.forecaster.ForecasterAgent` as the
default `forecaster` kind. Delete this module once that default reads
`agents.pipeline.ForecasterAgent`.
"""

from agents.pipeline import ForecasterAgent

__all__ = ["ForecasterAgent"]
