"""Hands runs to django-q2 (or runs them in this process when EXECUTIONS_RUN_INLINE is set).

The task only wakes a worker process's dispatcher (executions.supervisor.offer); which queued
run starts next is executions.scheduler's fair order, read from the database."""

from __future__ import annotations

from django.conf import settings

TASK = "executions.supervisor.offer"


def enqueue_execution(execution_id: int) -> None:
    if settings.EXECUTIONS_RUN_INLINE:
        from executions.engine import run_execution

        run_execution(execution_id)
        return
    from django_q.tasks import async_task

    async_task(
        TASK,
        execution_id,
        task_name=f"execution-{execution_id}",
        group="executions",
        timeout=60,  # the task returns at once; the runs it wakes have their own timeouts
    )
