"""The one report on historical runs, for one agent or all agents, over a window [since, until).

One module per concern: `inputs` parses what users type (window, bucket), `sql` holds the
database's arithmetic (percentiles, failure streaks), `assembly` builds the report dict,
`formats` renders it as CSV or a table, `charts` draws it as inline SVG. The service's names are
re-exported here, so callers keep writing `from runner.reports import run_report`.
"""

from runner.reports.assembly import (
    report_outputs,
    run_report,
    run_report_from_params,
    runs_in_window,
)
from runner.reports.inputs import (
    BUCKETS,
    DEFAULT_BUCKET,
    DEFAULT_SINCE,
    MAX_BUCKETS,
    MAX_WINDOW,
    WINDOW_HELP,
    bucket_starts,
    parse_bucket,
    parse_duration,
    parse_moment,
    parse_window,
)
from runner.reports.sql import (
    RELIABILITY_SQL,
    TRUNC,
    EpochSeconds,
    MillisBetween,
    PercentileCont,
    percentiles,
    percentiles_by_offset,
)

__all__ = [
    "BUCKETS",
    "DEFAULT_BUCKET",
    "DEFAULT_SINCE",
    "MAX_BUCKETS",
    "MAX_WINDOW",
    "RELIABILITY_SQL",
    "TRUNC",
    "WINDOW_HELP",
    "EpochSeconds",
    "MillisBetween",
    "PercentileCont",
    "bucket_starts",
    "parse_bucket",
    "parse_duration",
    "parse_moment",
    "parse_window",
    "percentiles",
    "percentiles_by_offset",
    "report_outputs",
    "run_report",
    "run_report_from_params",
    "runs_in_window",
]
