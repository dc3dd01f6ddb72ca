"""`manage.py resolvemarkets`: record how markets ended, so forecasts can be scored.

    resolvemarkets            ask Gamma about the observed markets that have no resolution yet
    resolvemarkets --sample   record the shipped SAMPLE resolutions (made up) as resolving now

Idempotent: a market keeps its first resolution. Exit 1, with the reason on stderr, when Gamma
or the sample file cannot be read.
"""

import json

from django.core.management.base import BaseCommand, CommandError

from agents import resolutions
from agents.conf import conf
from agents.parameters import SPECS
from agents.sources import MarketSourceError


class Command(BaseCommand):
    help = (
        "Record market resolutions: closed markets' final prices from Gamma for the markets the "
        "agents observed, or the shipped SAMPLE resolutions with --sample."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--sample",
            action="store_true",
            help="Record agents/sample_data/resolutions.json (SAMPLE data, made up).",
        )
        parser.add_argument(
            "--max-markets",
            type=int,
            default=5000,
            help="With Gamma: ask about at most this many unresolved markets (default 5000).",
        )
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args, sample, max_markets, **options):
        if max_markets < 1:
            raise CommandError("--max-markets must be at least 1.", returncode=1)
        try:
            applied = resolutions.apply_sample() if sample else self._gamma(max_markets)
        except MarketSourceError as exc:
            raise CommandError(str(exc), returncode=1) from exc
        if options["json"]:
            self.stdout.write(json.dumps(applied.as_dict()))
            return
        if applied.sample_data:
            self.stdout.write(applied.notice)
            self.stdout.write(
                f"SAMPLE resolutions: {applied.recorded} recorded, "
                f"{applied.already_recorded} already recorded."
            )
            return
        self.stdout.write(
            f"Gamma: asked about {applied.asked} unresolved market(s) in {applied.requests} "
            f"request(s); {applied.recorded} resolved and recorded, {applied.already_recorded} "
            f"already recorded, {applied.not_final} still open or not final."
        )

    @staticmethod
    def _gamma(max_markets):
        source = resolutions.GammaClosedMarkets(
            base_url=conf.GAMMA_BASE_URL,
            timeout_seconds=SPECS["request_timeout_seconds"].default,
            max_retries=SPECS["max_retries"].default,
            backoff_seconds=SPECS["retry_backoff_seconds"].default,
        )
        return resolutions.apply_gamma(source=source, limit=max_markets)
