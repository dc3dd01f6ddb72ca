import json
from datetime import UTC, datetime

import pytest

from agents.forecasters import BaselineForecaster, LLMForecaster, LLMUnavailable, parse_llm_answer
from agents.markets import parse_market
from tests.agents.test_markets import raw_market
from tests.support.fake_http import Reply, chat_reply

NOW = datetime(2026, 11, 23, tzinfo=UTC)
MARKET = parse_market(raw_market(outcomePrices='["0.37", "0.63"]'))


def llm(url, **kwargs):
    options = {"timeout_seconds": 2, "max_retries": 2}
    options.update(kwargs)
    return LLMForecaster(
        base_url=url, api_key="test-key", model="fake-model", backoff_seconds=0.001, **options
    )


def test_baseline_reports_the_market_price_and_says_so():
    result = BaselineForecaster().forecast(MARKET, now=NOW)
    assert result.ok and result.forecaster == "baseline"
    assert result.probability == 0.37
    assert result.confidence == 0.0
    assert "market's own YES price (0.3700)" in result.reasoning
    assert BaselineForecaster().forecast(MARKET, now=NOW) == result  # deterministic


def test_llm_valid_answer_is_parsed_with_token_usage(fake_server):
    answer = {"probability": 0.62, "confidence": 0.7, "reasoning": "Sample reasoning."}
    server = fake_server(lambda r: chat_reply(json.dumps(answer)))
    result = llm(server.url).forecast(MARKET, now=NOW)
    assert result.ok, result.error
    assert (result.probability, result.confidence) == (0.62, 0.7)
    assert result.reasoning == "Sample reasoning."
    assert (result.prompt_tokens, result.completion_tokens, result.total_tokens) == (120, 30, 150)
    assert result.model == "fake-model" and result.attempts == 1
    request = server.requests[0]
    assert request.method == "POST" and request.path == "/chat/completions"
    assert request.headers["authorization"] == "Bearer test-key"
    body = request.json()
    assert body["model"] == "fake-model" and body["temperature"] == 0
    assert MARKET.question in body["messages"][1]["content"]
    assert "JSON" in body["messages"][0]["content"]


def test_llm_answer_in_one_json_code_fence_is_accepted(fake_server):
    fenced = '```json\n{"probability": 0.1, "confidence": 0.2, "reasoning": "r"}\n```'
    server = fake_server(lambda r: chat_reply(fenced))
    assert llm(server.url).forecast(MARKET, now=NOW).probability == 0.1


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (chat_reply("I think it is likely."), "answer is not JSON"),
        (chat_reply('{"probability": 0.6, "confid'), "answer is not JSON"),
        (
            chat_reply('{"probability": 0.6, "confidence": 0.5, "reas', finish_reason="length"),
            "truncated (finish_reason=length)",
        ),
        (chat_reply('{"probability": 1.5, "confidence": 0.5, "reasoning": "r"}'), "from 0 to 1"),
        (chat_reply('{"probability": true, "confidence": 0.5, "reasoning": "r"}'), "a number"),
        (chat_reply('{"probability": "0.5", "confidence": 0.5, "reasoning": "r"}'), "a number"),
        (chat_reply('{"confidence": 0.5, "reasoning": "r"}'), "'probability' is missing"),
        (chat_reply('{"probability": 0.5, "confidence": 0.5}'), "'reasoning' must be"),
        (chat_reply("[0.5, 0.5]"), "expected a JSON object"),
        (Reply(body="<html>oops</html>"), "response body is not JSON"),
        (Reply(body={"choices": []}), "no choices[0].message.content"),
        (Reply(status=400, body={"error": "bad model"}), "HTTP 400"),
    ],
)
def test_llm_bad_answer_fails_the_forecast_with_a_clear_reason(fake_server, reply, reason):
    server = fake_server(lambda r: reply)
    result = llm(server.url).forecast(MARKET, now=NOW)
    assert not result.ok
    assert result.probability is None
    assert reason in result.error


def test_llm_token_usage_is_kept_even_when_the_answer_is_rejected(fake_server):
    server = fake_server(lambda r: chat_reply("nonsense"))
    result = llm(server.url).forecast(MARKET, now=NOW)
    assert not result.ok and result.total_tokens == 150


def test_llm_retries_5xx_then_succeeds(fake_server):
    answers = iter(
        [
            Reply(status=503, body="overloaded"),
            chat_reply('{"probability": 0.5, "confidence": 0.5, "reasoning": "r"}'),
        ]
    )
    server = fake_server(lambda r: next(answers))
    result = llm(server.url).forecast(MARKET, now=NOW)
    assert result.ok and result.attempts == 2 and len(server.requests) == 2


def test_llm_timeout_fails_the_forecast_after_bounded_retries(fake_server):
    server = fake_server(lambda r: Reply(body={}, delay=0.5))
    result = llm(server.url, timeout_seconds=0.1, max_retries=1).forecast(MARKET, now=NOW)
    assert not result.ok
    assert "timed out" in result.error and "after 2 attempts" in result.error


def test_llm_unreachable_endpoint_raises(fake_server):
    server = fake_server(lambda r: Reply(body={}))
    url = server.url
    server.__exit__(None, None, None)
    with pytest.raises(LLMUnavailable, match="unreachable"):
        llm(url, max_retries=0).forecast(MARKET, now=NOW)


def test_parse_llm_answer_strips_reasoning():
    assert parse_llm_answer('{"probability": 0, "confidence": 1, "reasoning": " x "}') == (
        0.0,
        1.0,
        "x",
    )
