"""Fixed-bucket histograms of milliseconds, and percentiles read back from them.

Bucket 0 holds values under 1 ms (negative start delays, from clock skew, too); bucket b >= 1
holds [2^((b-1)/8), 2^(b/8)) ms: eight buckets per doubling, each 9.05% wider than its lower
edge. The database computes the same buckets (migration 0010's triggers, `rollups.py`); this
module only reads them.

A percentile is found as `percentile_cont` finds it (the value at rank f * (n - 1), interpolated
between its two neighbours), with each neighbour placed inside its bucket as if the bucket's
values were spread evenly. The exact neighbour lies in the same bucket, so the estimate is off
by less than one bucket width: under `RELATIVE_ERROR` (9.05%) of the exact value, or under 1 ms
for values under 1 ms (a negative value is counted as if it were 0 to 1 ms).
"""

from __future__ import annotations

import math

PER_DOUBLING = 8
RELATIVE_ERROR = 2 ** (1 / PER_DOUBLING) - 1


def bucket_of(value: float) -> int:
    """The bucket of `value` ms, as the database computes it."""
    if value < 1:
        return 0
    return math.floor(math.log(value) / math.log(2.0) * PER_DOUBLING) + 1


def bucket_bounds(bucket: int) -> tuple[float, float]:
    """[low, high) of a bucket, in ms."""
    if bucket <= 0:
        return 0.0, 1.0
    return 2 ** ((bucket - 1) / PER_DOUBLING), 2 ** (bucket / PER_DOUBLING)


def histogram_percentiles(counts: dict[int, int], fractions, *, ceiling=None) -> list:
    """Percentiles (`percentile_cont` semantics) estimated from `{bucket: count}`.

    `ceiling`, the exact maximum when known, caps the estimates in the top bucket.
    """
    ordered = sorted((bucket, count) for bucket, count in counts.items() if count > 0)
    total = sum(count for _, count in ordered)
    if not total:
        return [None] * len(fractions)

    def value_at(rank: int) -> float:
        below = 0
        for bucket, count in ordered:
            if rank < below + count:
                low, high = bucket_bounds(bucket)
                value = low + (rank - below + 0.5) / count * (high - low)
                return value if ceiling is None else min(value, float(ceiling))
            below += count
        raise AssertionError("rank beyond the histogram")

    answers = []
    for fraction in fractions:
        position = fraction * (total - 1)
        low, high = math.floor(position), math.ceil(position)
        below, above = value_at(low), value_at(high)
        answers.append(below + (position - low) * (above - below))
    return answers
