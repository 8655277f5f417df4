"""Moves each Cron CD job's own django-q2 schedule (`workflows-cron-<workflow>-<environment>`)
into a ScheduledJob, and removes those django-q2 rows: one of them holding an expression that
never fires stopped every schedule of the installation. An expression that cannot fire is
moved stopped, with the reason, so the workflow page says so."""

from __future__ import annotations

import re

from django.db import migrations

NAME_RE = re.compile(r"^workflows-cron-(\d+)-(\d+)$")


def forwards(apps, schema_editor):
    from django.utils import timezone

    from integrations.local_engine.cron import TICK, TICK_NAME, CronScheduleError, next_runs

    Schedule = apps.get_model("django_q", "Schedule")
    ScheduledJob = apps.get_model("integrations", "ScheduledJob")
    Workflow = apps.get_model("workflows", "Workflow")
    Environment = apps.get_model("workflows", "Environment")
    moved = False
    for schedule in Schedule.objects.filter(name__startswith="workflows-cron-"):
        match = NAME_RE.match(schedule.name or "")
        if match is None:
            continue
        workflow = Workflow.objects.filter(pk=int(match[1])).first()
        environment = Environment.objects.filter(pk=int(match[2])).first()
        if workflow is not None and environment is not None:
            zone = getattr(workflow, "cron_time_zone", "") or "UTC"
            try:
                next_run, error = next_runs(schedule.cron, zone, timezone.now(), 1)[0], ""
            except CronScheduleError as exc:
                next_run, error = None, str(exc)
            ScheduledJob.objects.update_or_create(
                workflow=workflow,
                environment=environment,
                defaults={
                    "cron": schedule.cron,
                    "time_zone": zone,
                    "next_run_at": next_run,
                    "last_error": error[:500],
                },
            )
            moved = True
        schedule.delete()
    if moved and not Schedule.objects.filter(name=TICK_NAME).exists():
        Schedule.objects.create(
            name=TICK_NAME,
            func=TICK,
            schedule_type="C",
            cron="* * * * *",
            repeats=-1,
            next_run=timezone.now(),
        )


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0003_scheduled_job"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
