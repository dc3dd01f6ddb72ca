"""Charts for the admin report page, drawn on the server as inline SVG (no CDN, no JavaScript).

Every label is escaped; each bar carries a <title> so hovering shows its exact numbers.
"""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import mark_safe

RUNS_COLOUR = "#79aec8"
FAILURES_COLOUR = "#ba2121"
STATUS_COLOURS = {
    "succeeded": "#2e7d32",
    "failed": "#ba2121",
    "timed_out": "#e65100",
    "abandoned": "#6d4c41",
    "cancelled": "#9e9e9e",
    "skipped": "#bdbdbd",
    "queued": "#79aec8",
    "running": "#1565c0",
}


def _svg(width, height, label, body):
    return mark_safe(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
        f'font-family="sans-serif" font-size="11">{"".join(body)}</svg>'
    )


def buckets_chart(buckets, *, bucket_name, width=720, height=220):
    """Runs per bucket (blue) with the failures among them (red) drawn over each bar."""
    left, right, top, bottom = 40, 10, 10, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((b["runs"] for b in buckets), default=0) or 1
    slot_w = plot_w / max(len(buckets), 1)
    bar_w = max(slot_w * 0.8, 1)
    body = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end">{peak}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    for i, b in enumerate(buckets):
        x = left + i * slot_w + (slot_w - bar_w) / 2
        runs_h = plot_h * b["runs"] / peak
        fail_h = plot_h * b["failures"] / peak
        tip = escape(f"{b['start']}: {b['runs']} runs, {b['failures']} failures")
        body.append(
            f'<g class="bucket"><title>{tip}</title>'
            f'<rect x="{x:.1f}" y="{top + plot_h - runs_h:.1f}" width="{bar_w:.1f}" '
            f'height="{runs_h:.1f}" fill="{RUNS_COLOUR}"/>'
            f'<rect x="{x:.1f}" y="{top + plot_h - fail_h:.1f}" width="{bar_w:.1f}" '
            f'height="{fail_h:.1f}" fill="{FAILURES_COLOUR}"/></g>'
        )
    if buckets:
        body.append(
            f'<text x="{left}" y="{height - 10}">{escape(buckets[0]["start"])}</text>'
            f'<text x="{left + plot_w}" y="{height - 10}" text-anchor="end">'
            f"{escape(buckets[-1]['start'])}</text>"
        )
    legend_x, legend_y = left + plot_w / 2 - 45, height - 19
    body.append(
        f'<g class="legend"><rect x="{legend_x}" y="{legend_y}" width="10" height="10" fill="{RUNS_COLOUR}"/>'
        f'<text x="{legend_x + 14}" y="{legend_y + 9}">runs</text>'
        f'<rect x="{legend_x + 50}" y="{legend_y}" width="10" height="10" fill="{FAILURES_COLOUR}"/>'
        f'<text x="{legend_x + 64}" y="{legend_y + 9}">failures</text></g>'
    )
    label = f"Runs and failures per {bucket_name}"
    return _svg(width, height, label, body)


def status_chart(by_status, *, width=720, row_height=20):
    """One horizontal bar per status, labelled with its count."""
    label_w, value_w = 90, 50
    plot_w = width - label_w - value_w
    peak = max(by_status.values(), default=0) or 1
    body = []
    for i, (status, count) in enumerate(by_status.items()):
        y = i * row_height
        bar = plot_w * count / peak
        body.append(
            f'<g class="status"><title>{escape(status)}: {count}</title>'
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{escape(status)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{bar:.1f}" height="{row_height - 6}" '
            f'fill="{STATUS_COLOURS.get(status, RUNS_COLOUR)}"/>'
            f'<text x="{label_w + bar + 4:.1f}" y="{y + 14}">{count}</text></g>'
        )
    return _svg(width, row_height * max(len(by_status), 1), "Runs by status", body)


SERIES_COLOURS = ("#1565c0", "#2e7d32", "#e65100", "#6a1b9a", "#00838f", "#ad1457")
MARKET_COLOUR = "#9e9e9e"
# A reliability diagram's two kinds of point: (css class, label, count, mean, observed) keys.
POINTS = (
    ("market-point", "market price", "market_forecasts", "market_mean_price", "market_observed"),
    ("forecast-point", "forecasts", "forecasts", "mean_forecast", "observed"),
)


def reliability_chart(calibration, *, size=380):
    """A reliability diagram: per calibration bucket, the observed frequency of YES against the
    mean forecast, one coloured series per (agent, forecaster) and the market price at forecast
    time in grey. Points on the diagonal are perfectly calibrated; a point's area grows with the
    forecasts in its bucket."""
    margin = 40
    plot = size - 2 * margin
    peak = max((max(r["forecasts"], r["market_forecasts"]) for r in calibration), default=1) or 1

    def x(value):
        return margin + plot * value

    def y(value):
        return margin + plot * (1 - value)

    body = [
        f'<rect x="{margin}" y="{margin}" width="{plot}" height="{plot}" fill="none" stroke="#999"/>',
        f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(1)}" y2="{y(1)}" stroke="#bbb" stroke-dasharray="4 3"/>',
        f'<text x="{size / 2}" y="{size - 8}" text-anchor="middle">mean forecast of YES</text>',
        f'<text x="12" y="{size / 2}" text-anchor="middle" transform="rotate(-90 12 {size / 2})">'
        "observed frequency of YES</text>",
        f'<text x="{x(0)}" y="{y(0) + 14}" text-anchor="middle">0</text>',
        f'<text x="{x(1)}" y="{y(0) + 14}" text-anchor="middle">1</text>',
        f'<text x="{x(0) - 6}" y="{y(1) + 4}" text-anchor="end">1</text>',
    ]
    series: dict = {}
    for row in calibration:
        series.setdefault(f"{row['agent']}/{row['forecaster']}", []).append(row)
    for index, (name, rows) in enumerate(series.items()):
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        for row in rows:
            for css, label, count, mean, observed in POINTS:
                if not row[count]:
                    continue
                tip = escape(
                    f"{name}, {label} {row['bucket']}: {row[count]} forecasts, "
                    f"mean {row[mean]}, observed {row[observed]}"
                )
                r = 3 + 5 * (row[count] / peak) ** 0.5
                cx, cy = x(row[mean]), y(row[observed])
                mark = (
                    f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" fill="{colour}" '
                    'fill-opacity="0.7"/>'
                    if css == "forecast-point"
                    else f'<rect x="{cx - r:.1f}" y="{cy - r:.1f}" width="{2 * r:.1f}" '
                    f'height="{2 * r:.1f}" fill="none" stroke="{MARKET_COLOUR}"/>'
                )
                body.append(f'<g class="{css}"><title>{tip}</title>{mark}</g>')
        body.append(
            f'<text x="{margin + 6}" y="{margin + 14 + 14 * index}" fill="{colour}">'
            f"● {escape(name)}</text>"
        )
    body.append(
        f'<text x="{margin + 6}" y="{margin + 14 + 14 * len(series)}" fill="{MARKET_COLOUR}">'
        "□ market price at forecast time</text>"
    )
    return _svg(size, size, "Reliability diagram of forecasts and of the market price", body)
