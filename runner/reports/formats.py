"""The report as CSV rows, as a plain-text table and as readable agent outputs: the same values
`run_report()` returned.

CSV is long-form (`section,item,metric,value`) so one file holds every part of the report and a
spreadsheet can pivot it; the admin download and `runreport --format csv` both write it. CSV and
JSON keep rates as fractions (0.4286) for machines; the table, for people, prints every rate as a
percentage (42.9%), as the admin page does.
"""

from __future__ import annotations

import csv
import io
import json

CSV_HEADER = ("section", "item", "metric", "value")
# How the rows of each list in the report are named in the `item` column.
LIST_ITEM_KEYS = {
    "buckets": ("start",),
    "failures_by_type": ("error_type", "status"),
    "by_actor_source": ("actor", "source"),
    "agents": ("agent",),
    # outputs of the forecaster's scorekeeping hook (agents.scoring)
    "forecast_scores": ("agent", "forecaster"),
    "forecast_calibration": ("agent", "forecaster", "bucket"),
    "resolved_paper_pnl": ("agent", "forecaster"),
}


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _estimate_note(report: dict) -> list[str]:
    """A line saying the percentiles are estimates, and how close, when they are."""
    method = report.get("percentiles") or {}
    if method.get("method") != "histogram":
        return []
    error = method["max_relative_error"]
    return [f"(median and p95 estimated from histograms, within {error:.2%} of the exact value)"]


def report_rows(report: dict) -> list[tuple]:
    """Flatten the report to (section, item, metric, value) rows, in the report's own order."""
    rows = []

    def walk(section, item, value):
        if isinstance(value, dict):
            for key, inner in value.items():
                if isinstance(inner, dict | list) and key != "outputs":
                    walk(section, f"{item}.{key}" if item else key, inner)
                else:
                    rows.append((section, item, key, _cell(inner)))
        elif isinstance(value, list):
            name = item.rsplit(".", 1)[-1] if item else section
            keys = LIST_ITEM_KEYS.get(name, ())
            for index, entry in enumerate(value):
                if not isinstance(entry, dict):
                    rows.append((section, item, str(index), _cell(entry)))
                    continue
                label = "/".join(str(entry.get(k, "")) for k in keys) or str(index)
                prefix = f"{item}.{label}" if item else label
                for key, inner in entry.items():
                    if key not in keys:
                        rows.append((section, prefix, key, _cell(inner)))
        else:
            rows.append((section, item, "", _cell(value)))

    for section, value in report.items():
        if section == "outputs":
            for key, inner in value.items():
                if isinstance(inner, list) and key in LIST_ITEM_KEYS:
                    walk(section, key, inner)  # one row per entry and measure
                else:
                    rows.append((section, "", key, _cell(inner)))
        else:
            walk(section, "", value)
    return rows


def report_csv(report: dict) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(report_rows(report))
    return buffer.getvalue()


def _number(value, suffix=""):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}{suffix}"
    return f"{value}{suffix}"


def _percent(rate):
    """A success rate (kept as a fraction in the report) the way people read it: 42.9%."""
    return _number(None if rate is None else rate * 100, "%")


def _text(value):
    if value is None:
        return "-"
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _entry(entry) -> str:
    """One entry of a listed output on one line: `label (count)` for a counted item (a dict with a
    `count`, or a [label, number] pair), `key: value, ...` for any other dict."""
    if isinstance(entry, dict):
        if "count" in entry and len(entry) > 1:
            label = " / ".join(_text(v) for k, v in entry.items() if k != "count")
            return f"{label} ({_text(entry['count'])})"
        return ", ".join(f"{key}: {_text(value)}" for key, value in entry.items())
    if isinstance(entry, list | tuple):
        if len(entry) == 2 and isinstance(entry[1], int | float) and not isinstance(entry[1], bool):
            return f"{_text(entry[0])} ({_text(entry[1])})"
        return " / ".join(_text(value) for value in entry)
    return _text(entry)


def readable_outputs(outputs: dict) -> list[dict]:
    """The agent's outputs for people: `text` for a single value, `lines` (one per entry) for a
    list or dict, so a hook's list of reasons never shows up as a Python or JSON literal."""
    rows = []
    for name, value in outputs.items():
        if isinstance(value, dict):
            lines = [f"{key}: {_text(inner)}" for key, inner in value.items()]
        elif isinstance(value, list | tuple):
            lines = [_entry(entry) for entry in value]
        else:  # a single value stays as it is, so the page formats numbers as before
            rows.append({"name": name, "text": "-" if value is None else value, "lines": None})
            continue
        rows.append({"name": name, "text": None if lines else "none", "lines": lines or None})
    return rows


def _table(headers, rows) -> list[str]:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return ["  " + line.rstrip() for line in lines]


def _is_record_list(value) -> bool:
    """A list of at least one dict, all with the same (four or more) keys: printed as a table."""
    if not isinstance(value, list) or not value or not isinstance(value[0], dict):
        return False
    keys = list(value[0])
    return len(keys) >= 4 and all(isinstance(v, dict) and list(v) == keys for v in value)


def _record_table(records) -> list[str]:
    keys = list(records[0])
    cells = [[_text(record[key]) for key in keys] for record in records]
    return [f"    {line}" for line in _table(keys, cells)]


def report_table(report: dict) -> str:
    """A readable terminal rendering of the report."""
    window = report["window"]
    runs = report["runs"]
    lines = [
        f"Report for {report['agent'] or 'all agents'}: "
        f"{window['since']} to {window['until']} (by {window['bucket']})",
        "",
        f"Runs: {runs['total']}  finished: {runs['finished']}  failures: {runs['failures']}  "
        f"success rate: {_percent(runs['success_rate'])}",
        "",
        "By status:",
        *_table(["status", "runs"], runs["by_status"].items()),
        "",
        "By trigger:",
        *_table(["trigger", "runs"], runs["by_trigger"].items()),
        "",
    ]
    duration, delay = report["duration_ms"], report["start_delay_ms"]
    lines += [
        "Timing (ms):",
        *_table(
            ["measure", "count", "median", "p95", "max"],
            [
                [
                    "duration",
                    duration["count"],
                    _number(duration["median"]),
                    _number(duration["p95"]),
                    _number(duration["max"]),
                ],
                [
                    "start delay vs slot",
                    delay["count"],
                    _number(delay["median"]),
                    _number(delay["p95"]),
                    "-",
                ],
            ],
        ),
        *_estimate_note(report),
        "",
    ]
    rel = report["reliability"]
    lines += [
        f"Longest failure streak: {rel['longest_failure_streak']}  "
        f"MTBF: {_number(rel['mtbf_seconds'], ' s')}  "
        f"MTTR: {_number(rel['mttr_seconds'], ' s')} ({rel['recoveries']} recoveries)",
        "",
        f"Runs per {window['bucket']}:",
        *_table(
            ["start", "runs", "failures"],
            [[b["start"], b["runs"], b["failures"]] for b in report["buckets"]],
        ),
        "",
    ]
    failures = report["failures_by_type"]
    lines.append("Failures by error type:")
    if failures:
        lines += _table(
            ["error type", "status", "count", "latest", "latest message"],
            [
                [
                    f["error_type"] or "-",
                    f["status"],
                    f["count"],
                    f["latest_at"],
                    f["latest_message"][:60],
                ]
                for f in failures
            ],
        )
    else:
        lines.append("  none")
    control = report["control_actions"]
    lines += ["", f"Control actions: {control['total']}"]
    if control["by_actor_source"]:
        lines += _table(
            ["actor", "source", "count", "applied", "refused"],
            [
                [c["actor"] or "-", c["source"], c["count"], c["applied"], c["refused"]]
                for c in control["by_actor_source"]
            ],
        )
    if "agents" in report:
        lines += ["", "Per agent:"]
        lines += _table(
            ["agent", "runs", "succeeded", "failures", "success rate"],
            [
                [a["agent"], a["runs"], a["succeeded"], a["failures"], _percent(a["success_rate"])]
                for a in report["agents"]
            ],
        )
    lines += ["", "Agent output:"]
    if report["outputs"]:
        for row in readable_outputs(report["outputs"]):
            records = report["outputs"][row["name"]]
            if _is_record_list(records):
                lines += [f"  {row['name']}:", *_record_table(records)]
            elif row["lines"]:
                lines += [f"  {row['name']}:", *(f"    - {line}" for line in row["lines"])]
            else:
                lines.append(f"  {row['name']}: {row['text']}")
    else:
        lines.append("  none reported (no RUNNER_REPORT_EXTRAS hook produced any)")
    for path, error in report.get("output_errors", {}).items():
        lines.append(f"  hook {path} failed: {error}")
    return "\n".join(lines) + "\n"
