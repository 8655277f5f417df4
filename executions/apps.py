from __future__ import annotations

from django.apps import AppConfig


class ExecutionsConfig(AppConfig):
    name = "executions"

    def ready(self) -> None:
        # Imported here: recovery, retention and django-q2's models need the app registry
        # loaded, which it is only once ready() runs.
        from django.db.models.signals import post_migrate
        from django_q.signals import post_spawn

        from executions.recovery import start_recovery_loop
        from executions.retention import ensure_schedule
        from executions.supervisor import start_dispatching

        post_spawn.connect(start_recovery_loop, dispatch_uid="executions-recovery")
        # Each worker process takes queued runs (many at once, in threads) from its start.
        post_spawn.connect(start_dispatching, dispatch_uid="executions-dispatch")
        post_migrate.connect(ensure_schedule, sender=self, dispatch_uid="executions-retention")
