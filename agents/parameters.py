"""The forecaster's parameters: names, types, allowed ranges and defaults, checked in one place.

`validate_parameters` runs when an agent's configuration is saved (admin, API) and again before a
cycle starts, so a bad value never reaches a cycle. It returns only the keys the operator set,
normalised: defaults are applied by `resolve` at run time, so an agent saved with `{}` keeps
following the environment (`MARKET_SOURCE`, the LLM settings) rather than freezing today's values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from django.core.exceptions import ValidationError

from agents.conf import conf
from agents.forecasters import FORECASTER_NAMES
from agents.sources import SOURCE_NAMES


@dataclass(frozen=True)
class Spec:
    kind: str  # "choice", "int" or "number"
    default: Any
    low: float | None = None
    high: float | None = None
    low_exclusive: bool = False
    choices: tuple[str, ...] = ()
    help: str = ""

    def allowed(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        what = "a whole number" if self.kind == "int" else "a number"
        low = f"{self.low:g} (exclusive)" if self.low_exclusive else f"{self.low:g}"
        return f"{what} from {low} to {self.high:g}"


SPECS: dict[str, Spec] = {
    "source": Spec(
        "choice", None, choices=SOURCE_NAMES, help="Market source; default: MARKET_SOURCE."
    ),
    "forecaster": Spec("choice", "baseline", choices=FORECASTER_NAMES, help="Who forecasts."),
    "markets_per_cycle": Spec("int", 20, 1, 500, help="Top-ranked tradeable markets analysed."),
    "min_liquidity": Spec("number", 1000.0, 0, 1e12, help="USD liquidity a market needs."),
    "min_edge": Spec("number", 0.05, 0, 1, help="|probability - price| needed to trade."),
    "kelly_fraction": Spec("number", 0.25, 0, 1, low_exclusive=True, help="Share of full Kelly."),
    "max_position_fraction": Spec(
        "number", 0.05, 0, 1, low_exclusive=True, help="Cap per market, share of paper equity."
    ),
    "max_exposure_fraction": Spec(
        "number", 0.5, 0, 1, low_exclusive=True, help="Cap on all open positions, share of equity."
    ),
    "initial_paper_balance": Spec("number", 10000.0, 1, 1e12, help="Paper USD on the first trade."),
    "gamma_page_size": Spec("int", 100, 1, 500, help="Markets per Gamma request (limit)."),
    "gamma_max_pages": Spec("int", 5, 1, 100, help="Most Gamma pages read per cycle."),
    "request_timeout_seconds": Spec("number", 20.0, 0.1, 300, help="Per HTTP request."),
    "max_retries": Spec("int", 2, 0, 5, help="Retries of a failed HTTP request."),
    "retry_backoff_seconds": Spec("number", 0.5, 0, 60, help="First backoff; doubles each retry."),
}


@dataclass(frozen=True)
class ForecasterParams:
    source: str
    forecaster: str
    markets_per_cycle: int
    min_liquidity: float
    min_edge: float
    kelly_fraction: float
    max_position_fraction: float
    max_exposure_fraction: float
    initial_paper_balance: float
    gamma_page_size: int
    gamma_max_pages: int
    request_timeout_seconds: float
    max_retries: int
    retry_backoff_seconds: float

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _check(name: str, spec: Spec, value: Any) -> Any:
    message = f"{name} must be {spec.allowed()}, got {value!r}."
    if spec.kind == "choice":
        if value not in spec.choices:
            raise ValidationError(message)
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(message)
    if not math.isfinite(value):
        raise ValidationError(message)
    if spec.kind == "int":
        if not float(value).is_integer():
            raise ValidationError(message)
        value = int(value)
    else:
        value = float(value)
    too_low = value <= spec.low if spec.low_exclusive else value < spec.low
    if too_low or value > spec.high:
        raise ValidationError(message)
    return value


def _clean(parameters: Any) -> dict:
    if not isinstance(parameters, dict):
        raise ValidationError({"parameters": "Parameters must be a JSON object."})
    errors: dict[str, list[str]] = {}
    cleaned = {}
    for name, value in parameters.items():
        spec = SPECS.get(name)
        if spec is None:
            errors[name] = [f"Unknown parameter {name!r}; allowed parameters: {', '.join(SPECS)}."]
            continue
        try:
            cleaned[name] = _check(name, spec, value)
        except ValidationError as exc:
            errors[name] = exc.messages
    if errors:
        raise ValidationError(errors)
    return cleaned


def resolve(parameters: Any) -> ForecasterParams:
    """Every parameter with its default filled in, checked against the environment too."""
    cleaned = _clean(parameters)
    values = {name: cleaned.get(name, spec.default) for name, spec in SPECS.items()}
    if values["source"] is None:
        values["source"] = conf.MARKET_SOURCE
        if values["source"] not in SOURCE_NAMES:
            raise ValidationError(
                {
                    "source": f"source is not set and the MARKET_SOURCE setting is "
                    f"{values['source']!r}; it must be one of {', '.join(SOURCE_NAMES)}."
                }
            )
    if values["forecaster"] == "llm":
        missing = [n for n in ("LLM_BASE_URL", "LLM_MODEL") if not getattr(conf, n)]
        if missing:
            raise ValidationError(
                {
                    "forecaster": f"forecaster 'llm' needs {' and '.join(missing)} set in the "
                    "environment; use 'baseline' or configure the endpoint."
                }
            )
    return ForecasterParams(**values)


def validate_parameters(parameters: Any) -> dict:
    """The operator's own keys, normalised, after checking the whole resolved configuration."""
    resolve(parameters)
    return _clean(parameters)
