"""Hands runs to django-q2 (or runs them in this process when EXECUTIONS_RUN_INLINE is set).

The task is named by its dotted path, the way django-q2 stores it, so the lifecycle that
enqueues never imports the engine that runs."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string
from django_q.tasks import async_task

TASK = "executions.engine.run_execution"


def enqueue_execution(execution_id: int) -> None:
    """Queues the run for a worker (`run_execution(execution_id)`); called after commit."""
    if settings.EXECUTIONS_RUN_INLINE:
        import_string(TASK)(execution_id)
        return
    async_task(
        TASK,
        execution_id,
        task_name=f"execution-{execution_id}",
        group="executions",
        timeout=settings.Q_TIMEOUT,
    )
