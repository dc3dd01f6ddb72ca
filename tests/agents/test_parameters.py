import pytest
from django.core.exceptions import ValidationError

from agents.parameters import SPECS, resolve
from agents.pipeline import ForecasterAgent
from runner import registry, services
from runner.actors import Actor
from runner.errors import InvalidInput
from tests.factories import AgentFactory


def test_the_forecaster_kind_loads_the_pipelines_agent():
    assert registry.get_agent_class("forecaster") is ForecasterAgent


def test_empty_parameters_are_valid_and_resolve_to_documented_defaults(settings):
    settings.MARKET_SOURCE = "snapshot"
    assert ForecasterAgent.validate_parameters({}) == {}
    p = resolve({})
    assert p.source == "snapshot" and p.forecaster == "baseline"
    assert p.markets_per_cycle == 20 and p.min_edge == 0.05 and p.kelly_fraction == 0.25
    assert {name for name in SPECS} == set(p.as_dict())


def test_source_defaults_to_the_market_source_setting_at_run_time(settings):
    settings.MARKET_SOURCE = "gamma"
    assert resolve({}).source == "gamma"
    settings.MARKET_SOURCE = "ftp"
    with pytest.raises(ValidationError, match="MARKET_SOURCE setting is 'ftp'"):
        resolve({})


def test_valid_values_are_normalised_and_only_given_keys_are_kept():
    cleaned = ForecasterAgent.validate_parameters({"markets_per_cycle": 5.0, "min_edge": 0})
    assert cleaned == {"markets_per_cycle": 5, "min_edge": 0.0}
    assert isinstance(cleaned["markets_per_cycle"], int)


@pytest.mark.parametrize(
    ("parameters", "name", "message"),
    [
        ({"source": "ftp"}, "source", "source must be one of 'snapshot', 'gamma', got 'ftp'."),
        ({"forecaster": "oracle"}, "forecaster", "forecaster must be one of 'baseline', 'llm'"),
        ({"markets_per_cycle": 0}, "markets_per_cycle", "a whole number from 1 to 500, got 0."),
        ({"markets_per_cycle": 2.5}, "markets_per_cycle", "a whole number from 1 to 500"),
        ({"markets_per_cycle": True}, "markets_per_cycle", "got True"),
        ({"min_edge": "0.05"}, "min_edge", "min_edge must be a number from 0 to 1, got '0.05'."),
        ({"min_edge": 1.5}, "min_edge", "from 0 to 1"),
        ({"kelly_fraction": 0}, "kelly_fraction", "from 0 (exclusive) to 1, got 0."),
        ({"max_exposure_fraction": -1}, "max_exposure_fraction", "from 0 (exclusive) to 1"),
        ({"min_liquidity": float("nan")}, "min_liquidity", "a number from 0"),
        ({"max_retries": 9}, "max_retries", "a whole number from 0 to 5"),
        ({"colour": "red"}, "colour", "Unknown parameter 'colour'; allowed parameters: source"),
    ],
)
def test_bad_values_are_refused_naming_the_parameter(parameters, name, message):
    with pytest.raises(ValidationError) as caught:
        ForecasterAgent.validate_parameters(parameters)
    assert name in caught.value.message_dict
    assert message in " ".join(caught.value.message_dict[name])
    # Through the registry (what Agent.clean uses) the message still names the parameter.
    with pytest.raises(ValidationError) as wrapped:
        registry.validate_parameters("forecaster", parameters)
    assert any(text.startswith(f"{name}: ") for text in wrapped.value.message_dict["parameters"])


def test_llm_forecaster_needs_its_endpoint_configured(settings):
    settings.LLM_BASE_URL, settings.LLM_MODEL = "", ""
    with pytest.raises(ValidationError) as caught:
        ForecasterAgent.validate_parameters({"forecaster": "llm"})
    assert "needs LLM_BASE_URL and LLM_MODEL" in caught.value.message_dict["forecaster"][0]
    settings.LLM_BASE_URL, settings.LLM_MODEL = "http://127.0.0.1:9/v1", "m"
    assert ForecasterAgent.validate_parameters({"forecaster": "llm"}) == {"forecaster": "llm"}


@pytest.mark.django_db
def test_saving_a_bad_configuration_is_refused_and_changes_nothing():
    agent = AgentFactory(kind="forecaster", parameters={"min_edge": 0.1})
    with pytest.raises(InvalidInput) as caught:
        services.agent_update_config(
            agent=agent, values={"parameters": {"min_edge": 7}}, actor=Actor.cli()
        )
    assert caught.value.field == "parameters"
    assert "min_edge must be a number from 0 to 1, got 7." in caught.value.message
    agent.refresh_from_db()
    assert agent.parameters == {"min_edge": 0.1}


@pytest.mark.django_db
def test_model_validation_used_by_admin_forms_names_the_parameter():
    agent = AgentFactory.build(kind="forecaster", parameters={"kelly_fraction": 2})
    with pytest.raises(ValidationError) as caught:
        agent.full_clean()
    assert (
        "kelly_fraction: kelly_fraction must be a number from 0 (exclusive) to 1, got 2."
        in (caught.value.message_dict["parameters"])
    )
