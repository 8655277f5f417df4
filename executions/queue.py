"""Hands runs to django-q2 (or runs them in this process when EXECUTIONS_RUN_INLINE is set).

The task only wakes a worker process's dispatcher (executions.supervisor.offer); which queued
run starts next is executions.scheduler's fair order, read from the database."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string
from django_q.tasks import async_task

TASK = "executions.supervisor.offer"
# With EXECUTIONS_RUN_INLINE the run goes to its end (or its gate) in the caller's thread.
INLINE_TASK = "executions.engine.run_execution"


def enqueue_execution(execution_id: int) -> None:
    """Wakes a worker to take queued runs (`offer(execution_id)`); called after commit."""
    if settings.EXECUTIONS_RUN_INLINE:
        import_string(INLINE_TASK)(execution_id)
        return
    async_task(
        TASK,
        execution_id,
        task_name=f"execution-{execution_id}",
        group="executions",
        timeout=60,  # the task returns at once; the runs it wakes have their own timeouts
    )
