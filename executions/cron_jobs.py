"""The task's old dotted path. django-q2 stores a queued task as the dotted path of its
function, so occurrences queued as `executions.cron_jobs.run_cron_job` before the task moved to
`triggers.schedules` must still find it. Nothing imports this module; delete it once no such
task can be left in a queue."""

from __future__ import annotations

from triggers.schedules import run_cron_job

__all__ = ["run_cron_job"]
