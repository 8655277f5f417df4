from __future__ import annotations

import multiprocessing

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

        def on_worker_start(**kwargs: object) -> None:
            """post_spawn in a django-q2 worker: its recovery loop and its run dispatcher."""
            # django-q2 also sends post_spawn when `sync` plays a worker inside the caller's
            # process (a test, a shell): no loop may start there and outlive the call. A real
            # worker is a child of the cluster's sentinel process.
            if multiprocessing.parent_process() is None:
                return
            start_recovery_loop()
            # Each worker process takes queued runs (many at once, in threads) from its start.
            start_dispatching()

        # weak=False: nothing else keeps this function alive once ready() returns.
        post_spawn.connect(on_worker_start, weak=False, dispatch_uid="executions-worker-start")
        post_migrate.connect(ensure_schedule, sender=self, dispatch_uid="executions-retention")
