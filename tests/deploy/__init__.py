"""Helpers for the deploy tests: workflows, runs through the worker's task function, and the
local engine's leftovers."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

from executions.engine import run_execution
from executions.models import Execution
from executions.services import do_create_execution
from tests import base
from tests.base import wait_for as wait_for  # the deploy tests import these from here
from tests.executions import log_text as log_text
from tests.executions import run_in_thread as run_in_thread


def deploy_only(service, image: str, *, ptype: str = "app_cd", port=None, envs=("dev",), **deploy):
    """A deploy-only workflow of `service` for `image`, deploying to `envs` in order."""
    doc = {
        "name": "release",
        "pipeline_type": ptype,
        "source": {"kind": "image", "image": image},
        "deploy": {
            "port": port,
            "environments": [{"environment": e} for e in envs],
            **deploy,
        },
    }
    return base.save_document(service, doc)


def start_deploy(workflow, environment, image: str, digest: str, commit: str = "", user=None):
    """A run with only the deploy stage to `environment` of an image already known (the shape a
    rollback run has), not yet picked up."""
    execution = do_create_execution(
        workflow,
        ref="main",
        trigger="manual",
        triggered_by=user,
        image=image,
        commit_sha=commit,
        only_environment=environment,
    )
    Execution.objects.filter(pk=execution.pk).update(image_digest=digest)
    return execution


def run(execution) -> Execution:
    run_execution(execution.pk)
    execution.refresh_from_db()
    return execution


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def answers(url: str) -> bool:
    try:
        get(url)
    except (OSError, urllib.error.URLError):
        return False
    return True


def free_ports(count: int = 2, start: int = 21000) -> int:
    """The first of `count` consecutive free ports at or above `start`."""
    port = start
    while True:
        ok = True
        for candidate in range(port, port + count):
            with socket.socket() as sock:
                try:
                    sock.bind(("0.0.0.0", candidate))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
        port += count


def digest_of(docker_client, ref: str) -> str:
    """Pushes local image `ref` and returns the digest the registry reports."""
    repo, tag = ref.rsplit(":", 1)
    digest = ""
    for chunk in docker_client.api.push(repo, tag=tag, stream=True, decode=True):
        assert "error" not in chunk, chunk
        status = chunk.get("status", "")
        if "digest: " in status:
            digest = status.split("digest: ")[1].split()[0]
        aux = chunk.get("aux")
        if isinstance(aux, dict) and aux.get("Digest"):
            digest = aux["Digest"]
    assert digest, f"no digest pushing {ref}"
    return digest


def stage_output(execution, kind: str = "deploy") -> dict:
    return execution.stages.filter(kind=kind).order_by("position").last().output


def dumps(value) -> str:
    return json.dumps(value, sort_keys=True)
