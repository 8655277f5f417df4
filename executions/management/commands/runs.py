"""List recent runs, or terminate one: `runs`, `runs --workflow demo/web`, `runs --terminate 7`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from atmosly.errors import Conflict
from executions.cli import find_workflow
from executions.models import Execution
from executions.services import do_terminate


class Command(BaseCommand):
    help = "List recent runs, or terminate one."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workflow", default="")
        parser.add_argument("--limit", type=int, default=20)
        parser.add_argument("--terminate", type=int, metavar="ID", help="terminate this run")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["terminate"]:
            execution = Execution.objects.filter(pk=options["terminate"]).first()
            if execution is None:
                raise CommandError(f"no run with id {options['terminate']}")
            try:
                do_terminate(execution)
            except Conflict as exc:
                raise CommandError(str(exc)) from exc
            execution.refresh_from_db()
            self.stdout.write(f"{execution}: {execution.get_status_display()}")
            return
        runs = Execution.objects.select_related("workflow__service__project")
        if options["workflow"]:
            runs = runs.filter(workflow=find_workflow(options["workflow"]))
        self.stdout.write(
            f"{'ID':>5}  {'RUN':<32} {'STATUS':<19} {'REF':<16} {'COMMIT':<12} REASON"
        )
        for e in runs[: options["limit"]]:
            name = f"{e.workflow.service.project.name}/{e.workflow.service.name}/{e.workflow.name} #{e.number}"
            self.stdout.write(
                f"{e.pk:>5}  {name:<32} {e.get_status_display():<19} {e.ref[:16]:<16} "
                f"{e.commit_sha[:12]:<12} {e.status_reason}"
            )
