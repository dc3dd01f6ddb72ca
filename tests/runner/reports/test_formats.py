"""Rendering the report for people (table, admin outputs) and for machines (CSV)."""

import copy

from runner.reports.formats import readable_outputs, report_rows, report_table
from tests.runner.report_data import EXPECTED_ALPHA

REASONS = [
    {"reason": "no edge: the forecast equals the price", "count": 18},
    {"reason": "edge below min_edge: |edge| 0.0100 < min_edge 0.0200", "count": 2},
]


def _all_agents_report():
    report = copy.deepcopy(EXPECTED_ALPHA)
    report["agent"] = None
    report["agents"] = [
        {"agent": "alpha", "runs": 9, "succeeded": 3, "failures": 3, "success_rate": 0.4286},
        {"agent": "beta", "runs": 1, "succeeded": 0, "failures": 1, "success_rate": 0.0},
        {"agent": "gamma", "runs": 1, "succeeded": 0, "failures": 0, "success_rate": None},
    ]
    return report


def test_table_shows_every_success_rate_as_the_same_percentage():
    # The summary line said 42.9% while the per-agent table said 0.4 for the same rate.
    table = report_table(_all_agents_report())
    assert "success rate: 42.9%" in table
    rows = {
        line.split()[0]: line.split()[-1] for line in table.split("Per agent:")[1].splitlines()[3:6]
    }
    assert rows == {"alpha": "42.9%", "beta": "0.0%", "gamma": "-"}


def test_csv_keeps_success_rates_as_fractions_everywhere():
    rows = report_rows(_all_agents_report())
    assert ("runs", "", "success_rate", 0.4286) in rows
    assert ("agents", "alpha", "success_rate", 0.4286) in rows
    assert ("agents", "gamma", "success_rate", "") in rows


def test_outputs_read_as_text_with_one_line_per_listed_entry():
    outputs = {
        "forecasts": 20,
        "top_rejection_reasons": REASONS,
        "pairs": [["yes", 3], ["no", 1]],
        "by_side": {"yes": 3, "no": 1},
        "nothing": [],
        "unknown": None,
    }
    assert readable_outputs(outputs) == [
        {"name": "forecasts", "text": 20, "lines": None},
        {
            "name": "top_rejection_reasons",
            "text": None,
            "lines": [
                "no edge: the forecast equals the price (18)",
                "edge below min_edge: |edge| 0.0100 < min_edge 0.0200 (2)",
            ],
        },
        {"name": "pairs", "text": None, "lines": ["yes (3)", "no (1)"]},
        {"name": "by_side", "text": None, "lines": ["yes: 3", "no: 1"]},
        {"name": "nothing", "text": "none", "lines": None},
        {"name": "unknown", "text": "-", "lines": None},
    ]


def test_table_lists_output_entries_one_per_line():
    report = {**copy.deepcopy(EXPECTED_ALPHA), "outputs": {"forecasts": 20, "top": REASONS}}
    table = report_table(report)
    assert "  forecasts: 20\n" in table
    assert "  top:\n    - no edge: the forecast equals the price (18)\n" in table
    assert "[{" not in table and "'reason'" not in table
