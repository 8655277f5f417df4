"""Publishing execution events to browsers.

The database is the source of truth: the websocket consumer replays from it and tails it. A
publish through the channel layer only wakes consumers up sooner. With Redis (REDIS_URL) that
reaches consumers in other processes; with the embedded in-memory layer only this process, and
consumers in the web process notice the worker's writes by polling (executions/consumers.py).
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

from executions.models import Execution, LogChunk, StageRun

logger = logging.getLogger(__name__)


def group_name(execution_id: int) -> str:
    return f"execution-{execution_id}"


def project_group(project_id: int) -> str:
    """The dashboard's group: every run of the project (created, status, finished stage)."""
    return f"project-{project_id}"


def _group_send(group: str, event: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    if isinstance(layer, InMemoryChannelLayer) and not layer.groups.get(group):
        # The in-memory layer reaches this process only, and nobody here listens: skip the
        # hop to the event loop (a webhook delivery's publish, mostly, in the web server).
        return
    try:
        async_to_sync(layer.group_send)(group, event)
    except Exception:  # a missed wake-up costs one poll interval, never a lost line
        logger.warning("could not publish to %s", group, exc_info=True)


def _send(execution_id: int, event: dict) -> None:
    _group_send(group_name(execution_id), event)


def publish_project(execution_id: int, what: str, project_id: int | None = None) -> None:
    """Wakes the dashboards of the run's project (a new run, a status change, a stage); the
    project is looked up from the run unless the caller knows it."""
    if project_id is None:
        project_id = (
            Execution.objects.filter(pk=execution_id)
            .values_list("workflow__service__project_id", flat=True)
            .first()
        )
    if project_id is not None:
        _group_send(project_group(project_id), {"type": "project.wake", "what": what})


def publish_log(chunk: LogChunk) -> None:
    _send(chunk.execution_id, {"type": "execution.wake", "what": "log", "seq": chunk.seq})


def publish_status(execution: Execution) -> None:
    _send(execution.pk, {"type": "execution.wake", "what": "status"})
    publish_project(execution.pk, "status")


def publish_stage(stage: StageRun) -> None:
    _send(stage.execution_id, {"type": "execution.wake", "what": "stage"})
    publish_project(stage.execution_id, "stage")
