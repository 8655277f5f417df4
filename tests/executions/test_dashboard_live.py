"""The dashboard's websocket: a new run, a status change and a finished stage of the user's
projects each send `changed` with the "Waiting for me" count; other projects' runs do not."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from atmosly.asgi import websocket_urlpatterns
from executions.services import do_change_stage_status, do_change_status, do_create_execution
from executions.status import ExecutionStatus as S
from tests import base

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def connect(user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/dashboard/")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    await asyncio.sleep(0.6)  # the first poll records where things stand
    return communicator


async def test_new_run_status_and_stage_arrive(workflow, users):
    dashboard = await connect(users["carol"])
    execution = await sync_to_async(do_create_execution)(workflow, ref="main", trigger="manual")
    assert (await dashboard.receive_json_from(5)) == {"type": "changed", "waiting": 0}
    await sync_to_async(do_change_status)(execution, S.RUNNING)
    assert (await dashboard.receive_json_from(5))["type"] == "changed"
    source = await sync_to_async(lambda: execution.stages.get(kind="source"))()
    await sync_to_async(do_change_stage_status)(source, "running")
    assert (await dashboard.receive_json_from(5))["type"] == "changed"
    await sync_to_async(do_change_stage_status)(source, "succeeded")
    assert (await dashboard.receive_json_from(5))["type"] == "changed"
    await dashboard.disconnect()


async def test_other_projects_runs_stay_silent(workflow, users):
    @sync_to_async
    def elsewhere():
        other = base.make_project(users, name="other")
        other.members.remove(users["carol"])
        base.make_environments(other)
        base.make_registry(other)
        service = base.make_service(other, name="api")
        return do_create_execution(
            service.workflows.get(is_default=True), ref="main", trigger="manual"
        )

    dashboard = await connect(users["carol"])
    await elsewhere()
    assert await dashboard.receive_nothing(1.5)
    await dashboard.disconnect()


async def test_viewer_without_permission_is_refused(users):
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/dashboard/")
    communicator.scope["user"] = users["frank"]
    connected, code = await communicator.connect()
    assert not connected and code == 4403
