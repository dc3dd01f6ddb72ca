"""Forecast scorekeeping: how good were the forecasts, once their markets resolved?

A forecast is scored when its market has a resolution (agents.resolutions) recorded after the
forecast was made. With p the forecast's probability of YES, q the market's YES price when the
forecast was made (the baseline every forecaster must beat) and o the final YES price (1, 0, or
0.5 for a split):

- Brier score: mean of (p - o)^2 (0 is perfect; always saying 0.5 scores 0.25);
- log loss: mean of -(o ln p + (1 - o) ln(1 - p)), p clipped to [1e-15, 1 - 1e-15];
- calibration: forecasts in ten buckets of p ([0, 0.1), ..., [0.9, 1]), each with its mean p and
  the mean outcome (a reliability diagram: a calibrated forecaster's points lie on the diagonal);
- the same three for q, and the Brier skill score 1 - Brier(p) / Brier(q);
- realised paper profit and loss of the paper fills on resolved markets: shares x final price of
  the side bought, minus the cost.

The database aggregates (sums per agent, forecaster and bucket, one grouped query); this module
turns sums into scores. The plain functions `brier`, `log_loss` and `calibration` compute the
same from (p, o) pairs, for tests and for anyone scoring a list by hand.
"""

from __future__ import annotations

import math
from collections import defaultdict

from django.db import connection

from agents.models import Forecast, MarketObservation, MarketResolution, PaperFill, TradeDecision
from runner.models import Agent

EPSILON = 1e-15
TINY = 1e-100
BUCKETS = 10


def clip(p: float) -> float:
    return min(max(p, EPSILON), 1 - EPSILON)


def bucket_of(p: float) -> int:
    """The calibration bucket of a probability: floor(10 p), with 1.0 in the top bucket."""
    return BUCKETS - 1 if p >= 1 else int(math.floor(p * BUCKETS))


def bucket_label(index: int) -> str:
    return f"{index / BUCKETS:.1f}-{(index + 1) / BUCKETS:.1f}"


def brier(pairs) -> float | None:
    """Mean squared error of probabilities against outcomes: [(p, o), ...] -> score."""
    pairs = list(pairs)
    return sum((p - o) ** 2 for p, o in pairs) / len(pairs) if pairs else None


def log_loss(pairs) -> float | None:
    pairs = list(pairs)
    if not pairs:
        return None
    total = sum(-(o * math.log(clip(p)) + (1 - o) * math.log(1 - clip(p))) for p, o in pairs)
    return total / len(pairs)


def calibration(pairs) -> list[dict]:
    """The non-empty buckets: {"bucket", "forecasts", "mean_forecast", "observed"}."""
    groups = defaultdict(list)
    for p, o in pairs:
        groups[bucket_of(p)].append((p, o))
    return [
        {
            "bucket": bucket_label(index),
            "forecasts": len(group),
            "mean_forecast": sum(p for p, _o in group) / len(group),
            "observed": sum(o for _p, o in group) / len(group),
        }
        for index, group in sorted(groups.items())
    ]


def _bucket_sql(column: str) -> str:
    return (
        f"CASE WHEN {column} >= 1 THEN {BUCKETS - 1} "
        f"ELSE CAST(FLOOR({column} * {BUCKETS}) AS INTEGER) END"
    )


def _clip_sql(column: str) -> str:
    low, high = repr(EPSILON), repr(1 - EPSILON)
    return (
        f"CASE WHEN {column} < {low} THEN {low} WHEN {column} > {high} THEN {high} "
        f"ELSE {column} END"
    )


def _log_loss_sql(column: str) -> str:
    return f"-(o * LN({column}) + (1 - o) * LN(1 - {column}))"


def _snap_sql(column: str) -> str:
    """A probability below 1e-100 as 0: PostgreSQL raises an error (not 0) when a product of
    two doubles underflows, and no difference between these values can then underflow."""
    return f"CASE WHEN {column} < {TINY!r} THEN 0.0 ELSE {column} END"


SCORE_SQL = """
WITH scored AS (
    SELECT f.agent_id, f.forecaster, {p} AS p, {q} AS q, {o} AS o, r.is_sample AS sample
    FROM {forecast} f
    JOIN {observation} m ON m.id = f.market_id
    JOIN {resolution} r ON r.source = m.source AND r.market_id = m.market_id
    WHERE f.status = 'ok' AND f.created_at >= %s AND f.created_at < %s
      AND f.created_at < r.resolved_at {scope}
), clipped AS (
    SELECT scored.*, {p_clip} AS pc, {q_clip} AS qc, {p_bucket} AS pb, {q_bucket} AS qb
    FROM scored
)
SELECT agent_id, forecaster, pb, qb, COUNT(*), SUM(p), SUM(q), SUM(o),
       SUM((p - o) * (p - o)), SUM((q - o) * (q - o)), SUM({p_loss}), SUM({q_loss}),
       SUM(CASE WHEN sample THEN 1 ELSE 0 END)
FROM clipped
GROUP BY agent_id, forecaster, pb, qb
"""

PNL_SQL = """
SELECT fl.agent_id, fc.forecaster, COUNT(*), SUM(fl.cost),
       SUM(fl.shares * CASE WHEN fl.side = 'yes' THEN {o} ELSE 1 - {o} END)
FROM {fill} fl
JOIN {decision} d ON d.id = fl.decision_id
JOIN {forecast} fc ON fc.id = d.forecast_id
JOIN {observation} m ON m.id = d.market_id
JOIN {resolution} r ON r.source = m.source AND r.market_id = m.market_id
WHERE fl.created_at >= %s AND fl.created_at < %s AND fl.created_at < r.resolved_at {scope}
GROUP BY fl.agent_id, fc.forecaster
"""

SCORE_PARTS = {
    "p": _snap_sql("f.probability"),
    "q": _snap_sql("f.market_price"),
    "o": _snap_sql("r.yes_price"),
    "p_clip": _clip_sql("p"),
    "q_clip": _clip_sql("q"),
    "p_bucket": _bucket_sql("p"),
    "q_bucket": _bucket_sql("q"),
    "p_loss": _log_loss_sql("pc"),
    "q_loss": _log_loss_sql("qc"),
}


def _fetch(template, *, alias, agent, since, until, parts=None):
    """Run one of the queries above over [since, until), for one agent or all."""
    tables = {
        name: connection.ops.quote_name(model._meta.db_table)
        for name, model in (
            ("forecast", Forecast),
            ("observation", MarketObservation),
            ("resolution", MarketResolution),
            ("fill", PaperFill),
            ("decision", TradeDecision),
        )
    }
    scope, params = ("", [])
    if agent is not None:
        scope, params = f"AND {alias}.agent_id = %s", [agent.pk]
    sql = template.format(scope=scope, **tables, **(parts or {}))
    window = [connection.ops.adapt_datetimefield_value(moment) for moment in (since, until)]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*window, *params])
        return cursor.fetchall()


def _round(value):
    return None if value is None else round(value, 6)


def _new_group():
    return {"n": 0, "brier": 0.0, "market_brier": 0.0, "loss": 0.0, "market_loss": 0.0}


def _new_bucket():
    return {"n": 0, "p": 0.0, "o": 0.0, "market_n": 0, "q": 0.0, "market_o": 0.0}


def forecast_scores(agent, since, until) -> dict:
    """Scores per agent and forecaster over forecasts made in [since, until), as the report's
    outputs: `forecast_scores`, `forecast_calibration`, `resolved_paper_pnl` (and a notice when
    any resolution was SAMPLE data)."""
    groups = defaultdict(_new_group)
    buckets = defaultdict(_new_bucket)
    samples = 0
    rows = _fetch(SCORE_SQL, alias="f", agent=agent, since=since, until=until, parts=SCORE_PARTS)
    for agent_id, name, pb, qb, n, sp, sq, so, sb, smb, sl, sml, sample in rows:
        group = groups[(agent_id, name)]
        group["n"] += n
        group["brier"] += sb
        group["market_brier"] += smb
        group["loss"] += sl
        group["market_loss"] += sml
        by_p, by_q = buckets[(agent_id, name, int(pb))], buckets[(agent_id, name, int(qb))]
        by_p["n"], by_p["p"], by_p["o"] = by_p["n"] + n, by_p["p"] + sp, by_p["o"] + so
        by_q["market_n"], by_q["q"] = by_q["market_n"] + n, by_q["q"] + sq
        by_q["market_o"] += so
        samples += sample
    slugs = dict(Agent.objects.filter(pk__in={key[0] for key in groups}).values_list("pk", "slug"))
    outputs = {
        "forecast_scores": [
            _score_row(slugs[agent_id], name, group)
            for (agent_id, name), group in sorted(
                groups.items(), key=lambda kv: (slugs[kv[0][0]], kv[0][1])
            )
        ],
        "forecast_calibration": [
            _bucket_row(slugs[agent_id], name, index, bucket)
            for (agent_id, name, index), bucket in sorted(
                buckets.items(), key=lambda kv: (slugs[kv[0][0]], kv[0][1], kv[0][2])
            )
        ],
        "resolved_paper_pnl": _pnl(agent, since, until),
    }
    if samples:
        outputs["forecast_scores_notice"] = (
            f"{samples} of the scored forecasts resolved by SAMPLE resolutions (made up, "
            "agents/sample_data/resolutions.json): these scores measure nothing real."
        )
    return outputs


def _score_row(slug, name, group) -> dict:
    n = group["n"]
    score, market_score = group["brier"] / n, group["market_brier"] / n
    return {
        "agent": slug,
        "forecaster": name,
        "resolved_forecasts": n,
        "brier": _round(score),
        "log_loss": _round(group["loss"] / n),
        "market_brier": _round(market_score),
        "market_log_loss": _round(group["market_loss"] / n),
        "brier_skill": _round(1 - score / market_score) if market_score else None,
    }


def _bucket_row(slug, name, index, bucket) -> dict:
    n, market_n = bucket["n"], bucket["market_n"]
    return {
        "agent": slug,
        "forecaster": name,
        "bucket": bucket_label(index),
        "forecasts": n,
        "mean_forecast": _round(bucket["p"] / n) if n else None,
        "observed": _round(bucket["o"] / n) if n else None,
        "market_forecasts": market_n,
        "market_mean_price": _round(bucket["q"] / market_n) if market_n else None,
        "market_observed": _round(bucket["market_o"] / market_n) if market_n else None,
    }


def _pnl(agent, since, until) -> list[dict]:
    rows = _fetch(
        PNL_SQL,
        alias="fl",
        agent=agent,
        since=since,
        until=until,
        parts={"o": _snap_sql("r.yes_price")},
    )
    slugs = dict(Agent.objects.filter(pk__in={row[0] for row in rows}).values_list("pk", "slug"))
    return sorted(
        (
            {
                "agent": slugs[agent_id],
                "forecaster": name,
                "fills": fills,
                "cost": round(cost, 2),
                "payout": round(payout, 2),
                "realised_pnl": round(payout - cost, 2),
            }
            for agent_id, name, fills, cost, payout in rows
        ),
        key=lambda row: (row["agent"], row["forecaster"]),
    )
