"""Where candidate markets come from. Every source returns raw Gamma-shaped market objects.

- `snapshot`: the SAMPLE file shipped in agents/sample_data/ (the default: machines may be offline).
- `gamma`: the public Gamma REST API, `GET /markets?active=true&closed=false&archived=false`,
  paged by `limit`/`offset`, with a timeout, bounded retries with exponential backoff, and a
  clear `MarketSourceError` for a non-200, a timeout or a malformed body.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

from agents.http import RequestFailed, request_with_retries

SNAPSHOT_PATH = Path(__file__).parent / "sample_data" / "markets.json"
SOURCE_NAMES = ("snapshot", "gamma")


class MarketSourceError(Exception):
    """The source could not deliver markets; the message says which request failed and how."""


@dataclass
class LoadedMarkets:
    source: str
    raw_markets: list
    sample_data: bool
    notice: str = ""
    requests: int = 0


class MarketSource(Protocol):
    name: str

    def load(self) -> LoadedMarkets: ...


class SnapshotSource:
    """The bundled SAMPLE snapshot. Refuses a file that does not say it is sample data."""

    name = "snapshot"

    def __init__(self, path: Path = SNAPSHOT_PATH):
        self.path = Path(path)

    def load(self) -> LoadedMarkets:
        try:
            document = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise MarketSourceError(f"snapshot {self.path} cannot be read: {exc}") from exc
        if not isinstance(document, dict) or not isinstance(document.get("markets"), list):
            raise MarketSourceError(f"snapshot {self.path} has no 'markets' list")
        if document.get("sample_data") is not True:
            raise MarketSourceError(
                f"snapshot {self.path} is not marked 'sample_data': true; refusing to pass "
                "unlabelled data off as anything"
            )
        return LoadedMarkets(
            source=self.name,
            raw_markets=document["markets"],
            sample_data=True,
            notice=str(document.get("notice") or "SAMPLE DATA - NOT LIVE"),
        )


class GammaSource:
    """A small httpx client for Gamma's `/markets`, reading at most `max_pages` pages."""

    name = "gamma"

    def __init__(
        self,
        *,
        base_url: str,
        page_size: int = 100,
        max_pages: int = 5,
        timeout_seconds: float = 10.0,
        max_retries: int = 2,
        backoff_seconds: float = 0.5,
        checkpoint: Callable[[], None] = lambda: None,
        sleep: Callable[[float], None] = time.sleep,
        time_left: Callable[[], float] | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        self.max_pages = max_pages
        self.timeout_seconds = timeout_seconds
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.checkpoint = checkpoint
        self.sleep = sleep
        self.time_left = time_left

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            timeout=self.timeout_seconds,
            headers={"Accept": "application/json", "User-Agent": "agent-runner-forecaster"},
        )

    def load(self) -> LoadedMarkets:
        markets: list = []
        requests = 0
        with self.client() as client:
            for page in range(self.max_pages):
                if page:
                    self.checkpoint()
                params = {
                    "active": "true",
                    "closed": "false",
                    "archived": "false",
                    "limit": self.page_size,
                    "offset": page * self.page_size,
                }
                batch, attempts = self._get_page(client, params)
                requests += attempts
                markets.extend(batch)
                if len(batch) < self.page_size:
                    break
        return LoadedMarkets(
            source=self.name, raw_markets=markets, sample_data=False, requests=requests
        )

    def _get_page(self, client: httpx.Client, params: dict) -> tuple[list, int]:
        where = f"GET {self.base_url}/markets offset={params['offset']} limit={params['limit']}"
        try:
            response, attempts = request_with_retries(
                client,
                "GET",
                "/markets",
                params=params,
                max_retries=self.max_retries,
                backoff_seconds=self.backoff_seconds,
                sleep=self.sleep,
                time_left=self.time_left,
            )
        except RequestFailed as exc:
            raise MarketSourceError(f"Gamma {where} {exc}") from exc
        return self._parse_page(response, where), attempts

    @staticmethod
    def _parse_page(response: httpx.Response, where: str) -> list:
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MarketSourceError(
                f"Gamma {where} returned a body that is not JSON: {exc}"
            ) from exc
        if not isinstance(body, list):
            raise MarketSourceError(
                f"Gamma {where} returned {type(body).__name__}, expected a JSON list of markets"
            )
        return body
