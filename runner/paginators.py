"""A paginator for big tables: exact counts for small results, the planner's estimate for big ones.

`COUNT(*)` over a million cycle runs reads every row on PostgreSQL. The admin only needs to know
how many pages there are, so counting stops at `count_cap` rows; past that PostgreSQL's own row
estimate (EXPLAIN) is used and the page says "about". Other databases count exactly.
"""

import json

from django.core.paginator import Paginator
from django.db.models import QuerySet
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
