from __future__ import annotations

from django.apps import AppConfig


class ExecutionsConfig(AppConfig):
    name = "executions"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        from executions.recovery import start_recovery_loop

        post_spawn.connect(start_recovery_loop, dispatch_uid="executions-recovery")
