"""The forecaster's settings, declared once with their defaults (see runner/conf.py)."""

from runner.conf import Setting, SettingsGroup

conf = SettingsGroup(
    Setting(
        "MARKET_SOURCE",
        "snapshot",
        "str",
        "`snapshot` (bundled sample data, not live) or `gamma` (the public Gamma API).",
    ),
    Setting(
        "GAMMA_BASE_URL",
        "https://gamma-api.polymarket.com",
        "str",
        "Where the `gamma` market source reads.",
    ),
    Setting("LLM_BASE_URL", "", "str", "An OpenAI-compatible endpoint for the `llm` forecaster."),
    Setting("LLM_API_KEY", "", "str", "Its API key (sent as a Bearer token)."),
    Setting("LLM_MODEL", "", "str", "The model the `llm` forecaster asks."),
    Setting(
        "FORECASTER_LIVE_EXECUTOR",
        "",
        "str",
        "Dotted path of a live executor class; empty: live trading is refused.",
    ),
)
