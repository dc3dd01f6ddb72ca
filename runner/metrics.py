"""Prometheus metrics read from the database at scrape time.

Web servers, qcluster workers and the CLI are separate processes, so in-process counters would
each see a slice. Instead a custom collector computes every family from the database when
/metrics is scraped: agent states and counters, runs by status, cycle duration and start delay
histograms (cumulative over the runs kept), seconds since the last success, the cluster
heartbeat age, and budget breaches and limits.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.utils import floatToGoString

from runner import budget_usage, monitoring
from runner.models import Agent, AgentState, Alert, CycleRun, RunStatus

DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
START_DELAY_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)


def _histogram_counts(queryset, field, buckets, *, to_seconds):
    """Per agent: cumulative counts per bucket, total count and sum, in one grouped query."""
    bucket_counts = {
        f"le_{index}": Count("pk", filter=Q(**{f"{field}__lte": to_seconds(bound)}))
        for index, bound in enumerate(buckets)
    }
    rows = queryset.values("agent_id").annotate(total=Count("pk"), **bucket_counts)
    return {row["agent_id"]: row for row in rows}


class RunnerCollector:
    def __init__(self, now=None):
        self.now = now or timezone.now()

    def describe(self):
        return []

    def collect(self):
        now = self.now
        agents = {agent.pk: agent for agent in Agent.objects.all()}
        yield from self._agent_families(agents, now)
        yield from self._run_families(agents)
        yield from self._cluster_families(now)
        yield from budget_usage.metric_families(agents)

    def _agent_families(self, agents, now):
        state = GaugeMetricFamily(
            "agent_runner_agent_state", "1 for the agent's current state", labels=["agent", "state"]
        )
        cycles = CounterMetricFamily(
            "agent_runner_agent_cycles",
            "Cycles finished by the agent, by outcome (agent counters)",
            labels=["agent", "outcome"],
        )
        failures = GaugeMetricFamily(
            "agent_runner_agent_consecutive_failures",
            "Failed cycles in a row (the breaker trips at max_consecutive_failures)",
            labels=["agent"],
        )
        since_success = GaugeMetricFamily(
            "agent_runner_agent_seconds_since_last_success",
            "Seconds since the agent's last successful cycle ended (absent if never)",
            labels=["agent"],
        )
        overdue = GaugeMetricFamily(
            "agent_runner_agent_next_run_overdue_seconds",
            "Seconds the next scheduled cycle is late (0 when not due yet or not running)",
            labels=["agent"],
        )
        interval = GaugeMetricFamily(
            "agent_runner_agent_interval_seconds", "Configured interval", labels=["agent"]
        )
        for agent in agents.values():
            for value in AgentState.values:
                state.add_metric([agent.slug, value], 1.0 if agent.state == value else 0.0)
            cycles.add_metric([agent.slug, "any"], agent.run_count)
            cycles.add_metric([agent.slug, "success"], agent.success_count)
            cycles.add_metric([agent.slug, "error"], agent.error_count)
            failures.add_metric([agent.slug], agent.consecutive_failures)
            if agent.last_success is not None:
                since_success.add_metric(
                    [agent.slug], max((now - agent.last_success).total_seconds(), 0.0)
                )
            late = 0.0
            if agent.state == AgentState.RUNNING and agent.next_run is not None:
                late = max((now - agent.next_run).total_seconds(), 0.0)
            overdue.add_metric([agent.slug], late)
            interval.add_metric([agent.slug], agent.interval_minutes * 60)
        yield from (state, cycles, failures, since_success, overdue, interval)

    def _run_families(self, agents):
        by_status = GaugeMetricFamily(
            "agent_runner_runs",
            "Cycle runs kept in the database, by status (pruning lowers it)",
            labels=["agent", "status"],
        )
        counts = {
            (row["agent_id"], row["status"]): row["n"]
            for row in CycleRun.objects.values("agent_id", "status").annotate(n=Count("pk"))
        }
        for agent in agents.values():
            for status in RunStatus.values:
                by_status.add_metric([agent.slug, status], counts.get((agent.pk, status), 0))
        yield by_status

        finished = CycleRun.objects.filter(duration_ms__isnull=False, started_at__isnull=False)
        yield self._histogram(
            "agent_runner_cycle_duration_seconds",
            "Duration of finished cycles",
            agents,
            _histogram_counts(
                finished, "duration_ms", DURATION_BUCKETS, to_seconds=lambda s: int(s * 1000)
            ),
            DURATION_BUCKETS,
            sums={
                row["agent_id"]: (row["total_ms"] or 0) / 1000
                for row in finished.values("agent_id").annotate(total_ms=Sum("duration_ms"))
            },
        )

        delay = ExpressionWrapper(
            F("started_at") - Coalesce("slot", "queued_at"), output_field=DurationField()
        )
        started = CycleRun.objects.filter(started_at__isnull=False).annotate(start_delay=delay)
        delay_counts = _histogram_counts(
            started, "start_delay", START_DELAY_BUCKETS, to_seconds=lambda s: timedelta(seconds=s)
        )
        delay_sums = {
            row["agent_id"]: row["total"].total_seconds() if row["total"] else 0.0
            for row in started.values("agent_id").annotate(total=Sum("start_delay"))
        }
        yield self._histogram(
            "agent_runner_cycle_start_delay_seconds",
            "Time from a cycle's scheduled slot (or queueing) to its start",
            agents,
            delay_counts,
            START_DELAY_BUCKETS,
            sums=delay_sums,
        )

    @staticmethod
    def _histogram(name, documentation, agents, counts, buckets, *, sums):
        family = HistogramMetricFamily(name, documentation, labels=["agent"])
        for agent in agents.values():
            row = counts.get(agent.pk, {})
            total = row.get("total", 0)
            cumulative = [
                (floatToGoString(bound), row.get(f"le_{i}", 0)) for i, bound in enumerate(buckets)
            ]
            cumulative.append(("+Inf", total))
            family.add_metric([agent.slug], cumulative, sum_value=sums.get(agent.pk, 0.0))
        return family

    def _cluster_families(self, now):
        seen = monitoring.last_heartbeat()
        heartbeat = GaugeMetricFamily(
            "agent_runner_cluster_heartbeat_age_seconds",
            "Seconds since a qcluster worker last ran the watchdog task (absent if never)",
        )
        if seen is not None:
            heartbeat.add_metric([], max((now - seen).total_seconds(), 0.0))
        yield heartbeat
        open_alerts = GaugeMetricFamily(
            "agent_runner_alerts_open", "Alerts currently open, by kind", labels=["kind"]
        )
        for row in (
            Alert.objects.filter(closed_at__isnull=True).values("kind").annotate(n=Count("pk"))
        ):
            open_alerts.add_metric([row["kind"]], row["n"])
        yield open_alerts


def render(now=None) -> bytes:
    """The exposition text for one scrape (a fresh registry: nothing is kept between scrapes)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RunnerCollector(now))
    return generate_latest(registry)
