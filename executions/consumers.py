"""Websocket per execution: replays log chunks (`seq`, `stage_run_id`, `text`, `at`: when the
chunk was written) after a sequence number, then streams new chunks and the run's state
(executions.run_page.run_state: stages with timings, the actions this user may take, open
approval requests) until the run ends. A browser that reconnects with
`?after=<last seq seen>` loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, cast
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import InMemoryChannelLayer
from django.db.models import F, Max

from approvals.services import waiting_for
from executions.live import group_name, project_group
from executions.models import Execution, LogChunk, StageRun, StatusChange
from executions.run_page import run_state
from executions.status import ACTIVE, TERMINAL, WAITING
from workflows.permissions import VIEW, is_member, visible_projects

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

POLL_SECONDS = 0.25
# With the embedded (in-memory) channel layer the worker's wake-ups never reach this process:
# between the full reads above the run page then looks for new log chunks this often, with one
# indexed query (bench/run_page.py, "Log line → browser"). With Redis the wake-up comes at once.
LOG_POLL_SECONDS = 0.1
REPLAY_BATCH = 500


class ExecutionConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.execution_id = int(self.scope["url_route"]["kwargs"]["pk"])
        # Channels' lazy user stands for a User or an AnonymousUser.
        user = cast("User | AnonymousUser | None", self.scope.get("user"))
        if user is None or not await self.allowed(user):
            await self.close(code=4403)
            return
        self.user = user
        query = parse_qs(self.scope.get("query_string", b"").decode())
        try:
            self.after = int(query.get("after", ["-1"])[0])
        except ValueError:
            self.after = -1
        self.wake = asyncio.Event()
        self.last_state: dict | None = None
        await self.channel_layer.group_add(group_name(self.execution_id), self.channel_name)
        await self.accept()
        self.task = asyncio.create_task(self.stream())

    async def disconnect(self, code: int) -> None:
        task = getattr(self, "task", None)
        if task:
            task.cancel()
        if hasattr(self, "wake"):
            await self.channel_layer.group_discard(group_name(self.execution_id), self.channel_name)

    async def execution_wake(self, event: dict) -> None:
        self.wake.set()

    @database_sync_to_async
    def allowed(self, user: User | AnonymousUser) -> bool:
        if not user.is_authenticated or not user.has_perm(VIEW):
            return False
        execution = (
            Execution.objects.select_related("workflow__service__project")
            .filter(pk=self.execution_id)
            .first()
        )
        return execution is not None and is_member(user, execution.workflow.service.project)

    @database_sync_to_async
    def read(self) -> tuple[list[dict], dict]:
        # Status first: the engine writes a run's last chunk before its final status, so once a
        # terminal status is read, every chunk is already there for the query below.
        execution = Execution.objects.get(pk=self.execution_id)
        state = run_state(execution, self.user)
        chunks = [
            {**chunk, "at": chunk["at"].isoformat()}
            for chunk in LogChunk.objects.filter(execution_id=self.execution_id, seq__gt=self.after)
            .order_by("seq")
            .values("seq", "stage_run_id", "text", at=F("created_at"))[:REPLAY_BATCH]
        ]
        return chunks, state

    @database_sync_to_async
    def read_log(self) -> list[dict]:
        """New chunks only (one query on the (execution, seq) constraint), between full reads."""
        return [
            {**chunk, "at": chunk["at"].isoformat()}
            for chunk in LogChunk.objects.filter(execution_id=self.execution_id, seq__gt=self.after)
            .order_by("seq")
            .values("seq", "stage_run_id", "text", at=F("created_at"))[:REPLAY_BATCH]
        ]

    async def send_chunks(self, chunks: list[dict]) -> None:
        for chunk in chunks:
            await self.send_json({"type": "log", **chunk})
            self.after = chunk["seq"]

    async def stream(self) -> None:
        poll_logs = isinstance(self.channel_layer, InMemoryChannelLayer)
        loop = asyncio.get_running_loop()
        while True:
            self.wake.clear()
            chunks, state = await self.read()
            await self.send_chunks(chunks)
            if state != self.last_state:
                self.last_state = state
                await self.send_json({"type": "status", **state})
            if len(chunks) == REPLAY_BATCH:
                continue
            if state["status"] in TERMINAL:
                await self.send_json({"type": "end", "status": state["status"], "seq": self.after})
                await self.close()
                return
            full_read_at = loop.time() + POLL_SECONDS
            while (left := full_read_at - loop.time()) > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self.wake.wait(), min(left, LOG_POLL_SECONDS) if poll_logs else left
                    )
                    break  # woken: read everything now
                if poll_logs and loop.time() < full_read_at:
                    chunks = await self.read_log()
                    await self.send_chunks(chunks)
                    if len(chunks) == REPLAY_BATCH:
                        break


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    """The dashboard's websocket (/ws/dashboard/): sends `{"type": "changed", "waiting": n}`
    whenever a run of one of the user's projects is created, changes status or finishes a
    stage (then the page reloads its parts), with n the "Waiting for me" count.

    Woken at once through the project groups (executions.live.project_group) when the channel
    layer reaches the worker (Redis); otherwise it notices changes by polling cheap
    signatures every POLL_SECONDS: the newest status change's id and the stage statuses of the
    runs that have not ended."""

    async def connect(self) -> None:
        # Channels' lazy user stands for a User or an AnonymousUser.
        self.user = cast("User | AnonymousUser | None", self.scope.get("user"))
        projects = await self.project_ids()
        if projects is None:
            await self.close(code=4403)
            return
        self.projects: list[int] = projects
        self.wake = asyncio.Event()
        self.signature: tuple | None = None
        for project_id in self.projects:
            await self.channel_layer.group_add(project_group(project_id), self.channel_name)
        await self.accept()
        self.task = asyncio.create_task(self.watch())

    async def disconnect(self, code: int) -> None:
        task = getattr(self, "task", None)
        if task:
            task.cancel()
        for project_id in getattr(self, "projects", None) or []:
            await self.channel_layer.group_discard(project_group(project_id), self.channel_name)

    async def project_wake(self, event: dict) -> None:
        self.wake.set()

    @database_sync_to_async
    def project_ids(self) -> list[int] | None:
        """The user's projects; None if they may not watch (not logged in, no "View")."""
        user = self.user
        if user is None or not user.is_authenticated or not user.has_perm(VIEW):
            return None
        return list(visible_projects(user).values_list("pk", flat=True))

    @database_sync_to_async
    def read(self) -> tuple[tuple, int | None]:

        last = StatusChange.objects.aggregate(n=Max("id"))["n"] or 0
        seen = self.signature[0] if self.signature else 0
        if (
            self.signature is not None
            and last != seen
            and not StatusChange.objects.filter(
                id__gt=seen, id__lte=last, execution__workflow__service__project__in=self.projects
            ).exists()
        ):
            last = seen  # only other projects' runs moved
        alive = StageRun.objects.filter(
            execution__workflow__service__project__in=self.projects,
            execution__status__in=[*ACTIVE, *WAITING],
        ).values_list("id", "status")
        signature = (last, tuple(sorted(alive)))
        if signature == self.signature:
            return signature, None
        return signature, len(waiting_for(self.user))

    async def watch(self) -> None:
        while True:
            self.wake.clear()
            signature, waiting = await self.read()
            if waiting is not None:
                first = self.signature is None
                self.signature = signature
                if not first:
                    await self.send_json({"type": "changed", "waiting": waiting})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), POLL_SECONDS)
