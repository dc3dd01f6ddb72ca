"""Admin helpers for big tables (a million cycle runs): counting and date drill-down without a scan.

- `EstimatedCountPaginator`: `COUNT(*)` over a million rows reads every row on PostgreSQL. The admin
  only needs to know how many pages there are, so counting stops at `count_cap` rows; past that
  PostgreSQL's own row estimate (EXPLAIN) is used and the page says "about". Other databases count
  exactly.
- `ProbedDatesQuerySet`: the admin's date hierarchy asks for the distinct years, months or days of a
  column, which PostgreSQL answers by reading every matching row. With an index on the column the
  same answer comes from one `MIN()` probe per bucket found (a "loose index scan"): a few dozen index
  lookups instead of a million-row scan.
"""

import calendar
import json
from datetime import datetime, timedelta

from django.core.paginator import Paginator
from django.db.models import Min, QuerySet
from django.utils import timezone
from django.utils.functional import cached_property


class EstimatedCountPaginator(Paginator):
    count_cap = 10_000

    @cached_property
    def estimated(self):
        self.count  # noqa: B018 - the count decides whether it was estimated
        return self._estimated

    @cached_property
    def count(self):
        self._estimated = False
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        unordered = queryset.order_by()
        if unordered.db != "default" or unordered.query.combinator:
            return unordered.count()
        from django.db import connections

        if connections[unordered.db].vendor != "postgresql":
            return unordered.count()
        capped = unordered[: self.count_cap + 1].count()
        if capped <= self.count_cap:
            return capped
        self._estimated = True
        return max(self._planner_estimate(unordered), capped)

    @staticmethod
    def _planner_estimate(queryset):
        plan = json.loads(queryset.explain(format="json"))
        if isinstance(plan, list):  # EXPLAIN's own shape; Django may hand over the inner object
            plan = plan[0]
        return int(plan["Plan"]["Plan Rows"])


# At most this many probes; past it (a very spread-out column) Django's own DISTINCT query is used.
MAX_DATE_PROBES = 400


def _bucket_start(moment, kind):
    if kind == "year":
        return moment.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if kind == "month":
        return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _next_bucket(start, kind):
    if kind == "year":
        return start.replace(year=start.year + 1)
    if kind == "month":
        days = calendar.monthrange(start.year, start.month)[1]
        return (start + timedelta(days=days)).replace(day=1)
    return start + timedelta(days=1)


class ProbedDatesQuerySet(QuerySet):
    """A queryset whose `datetimes()` finds the distinct buckets by probing an indexed column."""

    @classmethod
    def wrap(cls, queryset):
        return cls(model=queryset.model, query=queryset.query.chain(), using=queryset._db)

    def datetimes(self, field_name, kind, order="ASC", tzinfo=None, **kwargs):
        if kind not in ("year", "month", "day") or order != "ASC" or kwargs:
            return super().datetimes(field_name, kind, order, tzinfo, **kwargs)
        zone = tzinfo or timezone.get_current_timezone()
        remaining = self.order_by()
        buckets = []
        lower = None
        while len(buckets) < MAX_DATE_PROBES:
            probe = (
                remaining if lower is None else remaining.filter(**{f"{field_name}__gte": lower})
            )
            first = probe.aggregate(first=Min(field_name))["first"]
            if first is None:
                return buckets
            local = timezone.localtime(first, zone)
            start = _bucket_start(local.replace(tzinfo=None), kind)
            buckets.append(timezone.make_aware(datetime(*start.timetuple()[:6]), zone))
            lower = timezone.make_aware(_next_bucket(start, kind), zone)
        return super().datetimes(field_name, kind, order, tzinfo)
