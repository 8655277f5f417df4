"""A RUN step killed by the image engine itself, not by this product: the build starts again.

podman before 4.6 runs each RUN step under a `buildah-oci-runtime` subprocess started with
PR_SET_PDEATHSIG=SIGKILL, which Linux sends when the engine *thread* that forked it ends; the
engine ends a thread each time it makes a network namespace, so with builds at once a step now
and then dies "while running runtime: signal: killed" though nobody killed it
(containers/podman#17918). This was the "signal: killed" of identical builds run at once
(tests/executions/test_worker_machines.py, bench/concurrency.py). The test sends that SIGKILL
to the step's `buildah-oci-runtime` itself, as the kernel does, and the run still succeeds.
"""

from __future__ import annotations

import os
import signal

import pytest

from executions.models import Execution
from executions.status import ExecutionStatus as S
from tests.base import wait_for
from tests.executions import log_text, make_git_workflow, run_in_thread, start_run, step_containers
from tests.realparts import sample_app_files, step_pid, unique_name

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]


def runtime_subprocess(step_id: str) -> int | None:
    """The pid of the `buildah-oci-runtime` process that watches RUN step `step_id` once the
    step runs (None while `runc` is still starting it)."""
    pid = step_pid(step_id)
    if pid is None:
        return None
    with open(f"/proc/{pid}/stat") as stat:
        parent = int(stat.read().rpartition(")")[2].split()[1])
    with open(f"/proc/{parent}/cmdline", "rb") as cmdline:
        name = cmdline.read().split(b"\0")[0]
    return parent if name == b"buildah-oci-runtime" else None


def test_a_step_the_engine_killed_is_built_again(engine, project, registry, git_server):
    marker = unique_name("pdeath")
    dockerfile = f'FROM localhost/busybox:latest\nRUN echo "{marker}" && sleep 6\n'
    files = sample_app_files(extra={"Dockerfile": dockerfile})
    workflow, _ = make_git_workflow(project, git_server, files, registry=registry)
    execution = start_run(workflow)
    worker = run_in_thread(execution.pk)

    (step,) = wait_for(lambda: step_containers(marker), 120, "the RUN step")
    runtime = wait_for(lambda: runtime_subprocess(step), 30, "the step's runtime process")
    os.kill(runtime, signal.SIGKILL)  # what the engine's thread exit does
    worker.join(240)

    run = Execution.objects.get(pk=execution.pk)
    log = log_text(run)
    assert run.status == S.SUCCEEDED, run.status_reason
    assert "while running runtime: signal: killed" in log
    assert "The image engine killed a build step itself" in log
    assert log.count(marker) >= 2  # the step ran again
    assert step not in step_containers(marker)  # the orphaned first attempt is gone too
