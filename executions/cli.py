"""Shared pieces of the terminal commands: finding a workflow, following a run."""

from __future__ import annotations

import sys
import time
from io import TextIOBase
from typing import TextIO

from django.core.management.base import CommandError

from executions.models import Execution, LogChunk
from executions.status import STAGE_TERMINAL, TERMINAL, StageStatus
from workflows.models import Workflow


def find_workflow(ref: str) -> Workflow:
    """A workflow by id or by `project/service/workflow` (`project/service` for the default)."""
    if ref.isdigit():
        workflow = Workflow.objects.filter(pk=int(ref)).first()
    else:
        parts = ref.split("/")
        if len(parts) not in (2, 3):
            raise CommandError(f'"{ref}" is neither an id nor project/service[/workflow]')
        qs = Workflow.objects.filter(service__project__name=parts[0], service__name=parts[1])
        workflow = (
            qs.filter(name=parts[2]).first()
            if len(parts) == 3
            else qs.filter(is_default=True).first()
        )
    if workflow is None:
        raise CommandError(f'no workflow "{ref}"')
    return workflow


class Follower:
    """Prints stage changes and log lines of a run as they are written, like `gh run watch`."""

    def __init__(
        self, execution: Execution, out: TextIO | TextIOBase = sys.stdout, poll: float = 0.2
    ) -> None:
        self.execution = execution
        self.out = out
        self.poll = poll
        self.after = -1
        self.stage_status: dict[int, str] = {}
        self.started: set[int] = set()

    def step(self) -> bool:
        """Prints what is new; True once the run has ended (or waits for a person)."""
        execution = Execution.objects.get(pk=self.execution.pk)
        chunks: dict[int, list[LogChunk]] = {}
        for chunk in LogChunk.objects.filter(execution=execution, seq__gt=self.after).order_by(
            "seq"
        ):
            chunks.setdefault(chunk.stage_run_id, []).append(chunk)
            self.after = chunk.seq
        # Stages run one after another, so stage by stage keeps the lines in their order: each
        # stage's header, then its lines, then how it ended.
        for stage in execution.stages.order_by("position"):
            lines = chunks.get(stage.pk, [])
            if stage.status == StageStatus.PENDING and not lines:
                continue
            if stage.pk not in self.started:
                self.started.add(stage.pk)
                if stage.status != StageStatus.SKIPPED:
                    self.out.write(f"▶ {stage.name}\n")
            for chunk in lines:
                self.out.write(chunk.text)
            ended = stage.status in STAGE_TERMINAL or stage.status == StageStatus.WAITING
            if ended and self.stage_status.get(stage.pk) != stage.status:
                self.stage_status[stage.pk] = stage.status
                detail = f" — {stage.error}" if stage.error else ""
                self.out.write(f"▶ {stage.name}: {stage.get_status_display()}{detail}\n")
        self.out.flush()
        self.execution = execution
        return execution.status in TERMINAL or execution.is_waiting

    def follow(self) -> Execution:
        while not self.step():
            time.sleep(self.poll)
        return self.execution
