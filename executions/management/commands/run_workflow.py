"""Start a run and follow it live. Exit code 0 only when the run Succeeded."""

from __future__ import annotations

import threading
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from atmosly.errors import Conflict, Invalid
from executions.cli import Follower, find_workflow
from executions.engine import run_execution
from executions.models import Trigger
from executions.services import do_terminate
from executions.status import ExecutionStatus
from triggers.runs import check_run_workflow


class Command(BaseCommand):
    help = "Run a workflow (id or project/service[/workflow]) at a branch, tag or commit."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workflow")
        parser.add_argument("--ref", default="", help="branch, tag or commit (default branch)")
        parser.add_argument("--user", default="", help="run as this user (checks permissions)")
        parser.add_argument("--no-watch", action="store_true", help="start it and return")
        parser.add_argument(
            "--inline", action="store_true", help="run it in this process instead of a worker"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        workflow = find_workflow(options["workflow"])
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f'no user "{options["user"]}"')
        try:
            execution = check_run_workflow(
                user,
                workflow,
                ref=options["ref"],
                trigger=Trigger.MANUAL,
                trigger_detail="command line",
                enqueue=not options["inline"],  # --inline: this process runs it below
            )
        except Invalid as exc:
            lines = [f"{e['field']}: {e['message']}" for e in exc.errors]
            raise CommandError("the workflow cannot run:\n  " + "\n  ".join(lines)) from exc
        except (Conflict, PermissionDenied) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Started {execution} (id {execution.pk}) at {execution.ref}")
        if options["no_watch"]:
            return
        engine = None
        if options["inline"]:
            engine = threading.Thread(target=run_execution, args=(execution.pk,), daemon=True)
            engine.start()
        follower = Follower(execution, out=self.stdout)
        while True:
            try:
                execution = follower.follow()
                break
            except KeyboardInterrupt:
                answer = input(f"\nTerminate {execution}? [y/N] ").strip().lower()
                if answer in ("y", "yes"):
                    do_terminate(execution)
                    self.stdout.write("Termination requested; following until it ends.")
        if engine is not None:
            # The run has ended; its engine still publishes and cleans up: let it finish
            # before this process exits under it.
            engine.join()
        self.stdout.write(
            f"{execution}: {execution.get_status_display()}"
            + (f" — {execution.status_reason}" if execution.status_reason else "")
        )
        if execution.status != ExecutionStatus.SUCCEEDED:
            raise SystemExit(1)
