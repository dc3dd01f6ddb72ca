"""Plain-dict views of runner records, shared by the CLI's --json and anything else printing runs."""


def run_as_dict(run) -> dict:
    return {
        "id": run.pk,
        "agent": run.agent.slug,
        "status": run.status,
        "trigger": run.trigger,
        "slot": run.slot,
        "queued_at": run.queued_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_ms": run.duration_ms,
        "worker": run.worker,
        "trading_mode": run.trading_mode,
        "summary": run.summary,
        "error": (
            {"type": run.error_type, "message": run.error_message}
            if run.error_type or run.error_message
            else None
        ),
    }
