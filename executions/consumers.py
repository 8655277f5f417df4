"""Websocket per execution: replays log chunks (`seq`, `stage_run_id`, `text`, `at`: when the
chunk was written) after a sequence number, then streams new chunks and the run's state
(executions.run_page.run_state: stages with timings, the actions this user may take, open
approval requests) until the run ends. A browser that reconnects with
`?after=<last seq seen>` loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db.models import F

from executions.live import group_name
from executions.models import Execution, LogChunk
from executions.run_page import run_state
from executions.status import TERMINAL
from workflows.permissions import VIEW, is_member

POLL_SECONDS = 0.25
REPLAY_BATCH = 500


class ExecutionConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.execution_id = int(self.scope["url_route"]["kwargs"]["pk"])
        user = self.user = self.scope.get("user")
        if not await self.allowed(user):
            await self.close(code=4403)
            return
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
    def allowed(self, user) -> bool:
        if user is None or not user.is_authenticated or not user.has_perm(VIEW):
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

    async def stream(self) -> None:
        while True:
            self.wake.clear()
            chunks, state = await self.read()
            for chunk in chunks:
                await self.send_json({"type": "log", **chunk})
                self.after = chunk["seq"]
            if state != self.last_state:
                self.last_state = state
                await self.send_json({"type": "status", **state})
            if len(chunks) == REPLAY_BATCH:
                continue
            if state["status"] in TERMINAL:
                await self.send_json({"type": "end", "status": state["status"], "seq": self.after})
                await self.close()
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), POLL_SECONDS)
