"""Forecasters: give each market a probability that it resolves YES, a confidence and reasoning.

`baseline` (the default) is deterministic and knows nothing beyond the price: its probability IS
the market's YES price, so its edge is zero by construction and the risk step honestly records
"no trade". It is a yardstick, not a strategy; it never invents reasoning or numbers.

`llm` asks any OpenAI-compatible chat-completions endpoint for strict JSON
`{"probability": 0..1, "confidence": 0..1, "reasoning": "..."}`. A garbage, truncated or
out-of-range answer fails that market's forecast with the reason; only an endpoint that cannot be
reached at all (`LLMUnavailable`) fails the cycle, since every other market would fail the same way.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import httpx

from agents.http import RequestFailed, request_with_retries
from agents.markets import Market

FORECASTER_NAMES = ("baseline", "llm")


class LLMUnavailable(Exception):
    """The LLM endpoint could not be reached at all (after retries)."""


@dataclass
class ForecastResult:
    forecaster: str
    probability: float | None = None
    confidence: float | None = None
    reasoning: str = ""
    error: str = ""
    model: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    attempts: int = 0
    latency_ms: int = 0

    @property
    def ok(self) -> bool:
        return not self.error and self.probability is not None


class BaselineForecaster:
    """Probability = the market's YES price (outcomePrices[0]); confidence = 0.

    Why: without outside information the best honest estimate is the market's own price. Edge is
    belief minus price, so the baseline's edge is exactly 0 and it never trades. Swap in `llm` (or
    your own forecaster) to test whether anything beats the price.
    """

    name = "baseline"

    def forecast(self, market: Market, *, now: datetime) -> ForecastResult:
        price = market.yes_price
        return ForecastResult(
            forecaster=self.name,
            probability=price,
            confidence=0.0,
            reasoning=(
                f"Baseline method: the market's own YES price ({price:.4f}) is taken as the "
                "probability. It uses no information beyond the price, so its edge is zero."
            ),
        )


SYSTEM_PROMPT = (
    "You are a careful forecaster of binary prediction markets. Reply with exactly one JSON "
    'object and nothing else: {"probability": <number from 0 to 1, the probability that the '
    'market resolves YES>, "confidence": <number from 0 to 1, how sure you are of your '
    'probability>, "reasoning": "<a few sentences>"}.'
)


def _strip_code_fence(text: str) -> str:
    """Models often wrap JSON in one ```json fence; that much (and only that) is forgiven."""
    text = text.strip()
    if text.startswith("```") and text.endswith("```") and text.count("```") == 2:
        text = text[3:-3]
        if text.lower().startswith("json"):
            text = text[4:]
    return text.strip()


def _unit_interval(answer: dict, key: str) -> float:
    value = answer.get(key)
    if value is None:
        raise ValueError(f"'{key}' is missing")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"'{key}' must be a number from 0 to 1, got {value!r}")
    if not math.isfinite(value) or not 0 <= value <= 1:
        raise ValueError(f"'{key}' must be from 0 to 1, got {value!r}")
    return float(value)


def parse_llm_answer(content: str) -> tuple[float, float, str]:
    """(probability, confidence, reasoning) from the model's text, or ValueError saying why not."""
    try:
        answer = json.loads(_strip_code_fence(content))
    except json.JSONDecodeError as exc:
        raise ValueError(f"answer is not JSON ({exc.msg}): {content[:120]!r}") from exc
    if not isinstance(answer, dict):
        raise ValueError(f"answer is {type(answer).__name__}, expected a JSON object")
    probability = _unit_interval(answer, "probability")
    confidence = _unit_interval(answer, "confidence")
    reasoning = answer.get("reasoning")
    if not isinstance(reasoning, str) or not reasoning.strip():
        raise ValueError("'reasoning' must be a non-empty string")
    return probability, confidence, reasoning.strip()


class LLMForecaster:
    """OpenAI-compatible `POST {base_url}/chat/completions`, temperature 0, strict JSON answer."""

    name = "llm"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        model: str,
        timeout_seconds: float = 30.0,
        max_retries: int = 2,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        time_left: Callable[[], float] | None = None,
    ):
        self.model = model
        self.time_left = time_left
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.client = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout_seconds, headers=headers
        )

    def close(self):
        self.client.close()

    def messages(self, market: Market, *, now: datetime) -> list[dict]:
        end = market.end_date.date().isoformat() if market.end_date else "unknown"
        description = str(market.raw.get("description") or "")[:1500]
        return [
            {"role": "system", "content": SYSTEM_PROMPT},
            {
                "role": "user",
                "content": (
                    f"Today is {now.date().isoformat()}.\n"
                    f"Market question: {market.question}\n"
                    f"Description: {description or '(none)'}\n"
                    f"Closes: {end}\n"
                    f"Current market price of YES: {market.yes_price:.4f}\n"
                    "What is the probability that this market resolves YES?"
                ),
            },
        ]

    def forecast(self, market: Market, *, now: datetime) -> ForecastResult:
        result = ForecastResult(forecaster=self.name, model=self.model)
        started = time.perf_counter()
        try:
            response, result.attempts = request_with_retries(
                self.client,
                "POST",
                "/chat/completions",
                json={
                    "model": self.model,
                    "temperature": 0,
                    "messages": self.messages(market, now=now),
                },
                max_retries=self.max_retries,
                backoff_seconds=self.backoff_seconds,
                sleep=self.sleep,
                time_left=self.time_left,
            )
        except RequestFailed as exc:
            if exc.kind == "connect":
                raise LLMUnavailable(
                    f"LLM endpoint {self.client.base_url} is unreachable: {exc}"
                ) from exc
            result.attempts = exc.attempts
            result.error = f"LLM request {exc}"
            return result
        finally:
            result.latency_ms = int((time.perf_counter() - started) * 1000)
        self._read_completion(response, result)
        return result

    @staticmethod
    def _read_completion(response: httpx.Response, result: ForecastResult) -> None:
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            result.error = f"LLM response body is not JSON: {response.text[:120]!r}"
            return
        usage = body.get("usage") if isinstance(body, dict) else None
        if isinstance(usage, dict):
            for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
                if isinstance(usage.get(key), int):
                    setattr(result, key, usage[key])
        try:
            choice = body["choices"][0]
            content = choice["message"]["content"]
        except (KeyError, IndexError, TypeError):
            result.error = "LLM response has no choices[0].message.content"
            return
        if choice.get("finish_reason") == "length":
            result.error = "LLM answer was truncated (finish_reason=length)"
            return
        if not isinstance(content, str):
            result.error = "LLM answer content is not text"
            return
        try:
            result.probability, result.confidence, result.reasoning = parse_llm_answer(content)
        except ValueError as exc:
            result.error = f"LLM answer rejected: {exc}"
