"""runner.budgets: how a budget is written, the budget day, and the arithmetic of what is left."""

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.budgets import (
    BudgetAllowance,
    BudgetLine,
    budget_day,
    budget_text,
    evaluate,
    llm_cost,
    parse_budgets,
)

PRICES = {
    "small-model": {"prompt": 0.15, "completion": 0.6},
    "big-model": {"prompt": 3, "completion": 15},
}


@pytest.fixture(autouse=True)
def priced_models(settings):
    settings.RUNNER_LLM_PRICES = PRICES


def refusal(value) -> list[str]:
    with pytest.raises(ValidationError) as refused:
        parse_budgets(value)
    assert list(refused.value.message_dict) == ["budgets"]
    return refused.value.message_dict["budgets"]


def test_every_budget_is_parsed_and_normalised():
    parsed = parse_budgets(
        {
            "cycles_per_day": 48.0,
            "llm_tokens_per_day": 200_000,
            "llm_cost_per_day": 5,
            "llm_model": "small-model",
            "paper_exposure": 2000,
            "paper_loss_per_day": 150.5,
            "timezone": "Europe/Paris",
        }
    )
    assert parsed == {
        "cycles_per_day": 48,
        "llm_tokens_per_day": 200_000,
        "llm_cost_per_day": 5.0,
        "llm_model": "small-model",
        "paper_exposure": 2000.0,
        "paper_loss_per_day": 150.5,
        "timezone": "Europe/Paris",
    }
    assert isinstance(parsed["cycles_per_day"], int)
    assert parse_budgets({}) == {} == parse_budgets(None)


@pytest.mark.parametrize(
    ("budgets", "words"),
    [
        (
            {"cycles_per_day": -1},
            "cycles_per_day must be a whole number from 1 to 1e+06 (cycles); got -1.",
        ),
        ({"cycles_per_day": 2.5}, "cycles_per_day must be a whole number"),
        (
            {"llm_tokens_per_day": "lots"},
            "llm_tokens_per_day must be a whole number from 1 to 1e+12 (tokens); got 'lots'.",
        ),
        ({"llm_tokens_per_day": True}, "llm_tokens_per_day must be a whole number"),
        (
            {"paper_exposure": -0.01},
            "paper_exposure must be a number from 0 to 1e+12 (USD); got -0.01.",
        ),
        ({"paper_loss_per_day": None}, "paper_loss_per_day must be a number from 0.01"),
        (
            {"llm_cost_per_day": 5, "llm_model": "gpt-unknown"},
            "llm_model must be a model priced in RUNNER_LLM_PRICES (big-model, small-model); got 'gpt-unknown'.",
        ),
        ({"llm_cost_per_day": 5}, "llm_cost_per_day needs llm_model"),
        ({"timezone": "Mars/Olympus"}, "timezone must be an IANA time zone"),
        (
            {"tokens": 5},
            "Unknown budget 'tokens'; allowed keys: cycles_per_day, llm_tokens_per_day",
        ),
    ],
)
def test_bad_budgets_are_refused_naming_the_key_and_the_allowed_range(budgets, words):
    messages = refusal(budgets)
    assert any(words in message for message in messages), messages


def test_a_budgets_value_that_is_not_an_object_is_refused():
    assert refusal([1, 2]) == ["budgets must be a JSON object (or {} for none)."]


def test_every_bad_key_is_reported_at_once():
    messages = refusal({"cycles_per_day": 0, "paper_exposure": "x"})
    assert len(messages) == 2


def test_without_prices_the_model_refusal_says_the_setting_is_empty(settings):
    settings.RUNNER_LLM_PRICES = {}
    assert (
        "none: RUNNER_LLM_PRICES is empty" in refusal({"llm_cost_per_day": 1, "llm_model": "x"})[0]
    )


@settings(max_examples=200)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=20), children, max_size=4)
        ),
        max_leaves=8,
    )
)
def test_any_json_is_either_a_budget_or_a_validation_error(value):
    try:
        parsed = parse_budgets(value)
    except ValidationError as exc:
        assert list(exc.message_dict) == ["budgets"] and exc.message_dict["budgets"]
    else:
        assert isinstance(parsed, dict)


def test_the_budget_day_runs_from_midnight_to_midnight_in_its_zone():
    now = datetime(2026, 12, 2, 23, 30, tzinfo=UTC)
    assert budget_day(now, "UTC") == (
        datetime(2026, 12, 2, tzinfo=UTC),
        datetime(2026, 12, 3, tzinfo=UTC),
    )
    # 00:30 on the 3rd in Paris (UTC+1 in winter): that day began at 23:00 UTC on the 2nd.
    assert budget_day(now, "Europe/Paris") == (
        datetime(2026, 12, 2, 23, tzinfo=UTC),
        datetime(2026, 12, 3, 23, tzinfo=UTC),
    )


def test_a_day_when_the_clocks_change_is_23_hours_long():
    start, end = budget_day(datetime(2026, 3, 29, 12, tzinfo=UTC), "Europe/Paris")
    assert (start, end) == (
        datetime(2026, 3, 28, 23, tzinfo=UTC),
        datetime(2026, 3, 29, 22, tzinfo=UTC),
    )


def test_llm_cost_prices_each_model_and_falls_back_to_the_budget_model():
    prices = {"small-model": (0.15, 0.6), "big-model": (3.0, 15.0)}
    tokens = {
        "small-model": {"prompt": 1000, "completion": 1000, "total": 2000},
        "unpriced": {"prompt": 2000, "completion": 0, "total": 2000},
        "big-model": {"prompt": 0, "completion": 0, "total": 1000},  # only a total: dearer rate
    }
    cost = llm_cost(tokens, prices=prices, fallback_model="small-model")
    assert cost == pytest.approx(0.15 + 0.6 + 2 * 0.15 + 15.0)


RESETS = datetime(2026, 12, 3, tzinfo=UTC)


def test_a_budget_is_spent_when_used_up_or_when_the_next_call_would_cross_it():
    lines = evaluate(
        {"cycles_per_day": 3, "llm_tokens_per_day": 1000, "paper_exposure": 500},
        {"cycles": 3, "llm_tokens": 900, "llm_call_tokens": 150, "paper_exposure": 499.99},
        resets_at=RESETS,
    )
    assert [(line.budget, line.exhausted) for line in lines] == [
        ("cycles_per_day", True),
        ("llm_tokens_per_day", True),
        ("paper_exposure", False),
    ]
    assert lines[1].describe() == (
        "llm_tokens_per_day: limit 1,000 tokens, used 900 tokens; the next LLM call "
        "(about 150 tokens) would cross it"
    )
    assert lines[0].describe() == "cycles_per_day: limit 3 cycles, used 3 cycles"
    assert lines[2].as_dict()["left"] == pytest.approx(0.01)


def test_without_a_call_estimate_anything_left_lets_a_call_go():
    line = BudgetLine("llm_tokens_per_day", "tokens", 1000, 999, None, RESETS)
    assert not line.exhausted


def test_the_cli_words_for_a_budget():
    line = BudgetLine("paper_loss_per_day", "USD", 100.0, 25.5, None, RESETS).as_dict()
    assert budget_text(line) == (
        "paper_loss_per_day: 25.50 USD of 100.00 USD used, 74.50 USD left; "
        "resets 2026-12-03T00:00:00+00:00"
    )


def test_an_allowance_stops_llm_calls_before_one_would_cross_the_token_budget():
    allowance = BudgetAllowance(llm_tokens_left=250)
    assert allowance.llm_call_blocked("m") is None  # no estimate yet: something is left
    allowance.spend_llm("m", prompt=80, completion=20, total=100)
    assert allowance.llm_call_blocked("m") is None  # 150 left >= a 100-token call
    allowance.spend_llm("m", prompt=80, completion=20, total=100)
    assert allowance.llm_call_blocked("m") == "llm_tokens_per_day"  # 50 left < 100
    assert allowance.stopped_by == ["llm_tokens_per_day"]


def test_an_allowance_stops_llm_calls_before_one_would_cross_the_cost_budget():
    allowance = BudgetAllowance(
        llm_cost_left=0.02, prices={"m": (0.1, 0.1)}, fallback_model="m", llm_call_tokens=100
    )
    assert allowance.llm_call_blocked("m") is None  # a 100-token call costs 0.01
    allowance.spend_llm("m", prompt=100, completion=50, total=150)  # 0.015 spent
    assert allowance.llm_call_blocked("m") == "llm_cost_per_day"  # the next: 0.015 > 0.005


def test_paper_room_follows_the_exposure_budget_and_closes_after_the_loss_budget():
    allowance = BudgetAllowance(paper_exposure_left=300.0)
    assert allowance.paper_room() == ("paper_exposure budget", 300.0)
    allowance.spend_paper(250.0)
    assert allowance.paper_room() == ("paper_exposure budget", 50.0)
    assert BudgetAllowance(paper_loss_left=0.0, paper_exposure_left=300.0).paper_room() == (
        "paper_loss_per_day budget",
        0.0,
    )
    assert BudgetAllowance().paper_room() is None
