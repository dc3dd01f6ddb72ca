"""Benchmark settings: the project's own, plus a trivial DRF endpoint to measure against."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
