"""When the worker's log reaches the database (and so the browser): event-driven, not on a tick.

The log writer wakes the supervising thread when a batch starts and calls it due once the
program pauses, so a line printed by a stage that then blocks is stored while the stage still
runs; a program printing fast still makes a few big chunks, not one row per line. Speed is
measured by bench/run_page.py and bench/engine_log_throughput.py; nothing here is timed.
"""

from __future__ import annotations

import threading

import pytest

from executions.logs import LogWriter
from executions.services import do_create_execution
from executions.status import ExecutionStatus as S
from executions.status import StageStatus
from tests.base import wait_for
from tests.executions import log_text, make_git_workflow, run_in_thread, stage, start_run
from tests.realparts import sample_app_files, unique_name


@pytest.fixture
def writer(workflow):
    execution = do_create_execution(workflow, ref="main", trigger="manual")
    writer = LogWriter(execution, max_delay=3600)  # only a pause or max_lines make it due
    writer.set_stage(execution.stages.first())
    return writer


@pytest.mark.django_db
def test_a_batch_starting_wakes_the_supervisor(writer):
    writer.wake.clear()
    assert not writer.due()
    writer.line("first line")
    assert writer.wake.is_set()
    writer.flush()
    writer.wake.clear()
    writer.write(b"no newline yet")  # an open line is not a batch
    assert not writer.wake.is_set()
    writer.write(b"\n")
    assert writer.wake.is_set()


@pytest.mark.django_db
def test_a_line_followed_by_a_pause_is_due_without_waiting_for_max_delay(writer):
    writer.line("one line, then the program waits")
    # Returns as soon as the pause makes the line due; with only the hour-long max_delay it
    # would sleep each whole minute and return False.
    assert any(writer.wait(60) for _ in range(3))
    writer.flush()
    assert log_text(writer.execution) == "one line, then the program waits\n"


@pytest.mark.django_db(transaction=True)
def test_a_fast_program_makes_few_big_chunks_in_order(workflow):
    execution = do_create_execution(workflow, ref="main", trigger="manual")
    writer = LogWriter(execution)
    writer.set_stage(execution.stages.first())
    done = threading.Event()

    def supervise() -> None:  # the engine's loop: sleep in wait(), flush when due
        from django.db import connections

        try:
            while not done.is_set():
                if writer.wait(0.1, until=done):
                    writer.flush()
        finally:
            connections.close_all()

    supervisor = threading.Thread(target=supervise)
    supervisor.start()
    lines = 100_000
    for i in range(0, lines, 100):
        writer.write("".join(f"line {n}\n" for n in range(i, i + 100)).encode())
    done.set()
    writer.wake.set()
    supervisor.join()
    writer.flush(final=True)
    chunks = execution.log_chunks.count()
    assert log_text(execution).splitlines() == [f"line {n}" for n in range(lines)]
    assert chunks <= lines / 100, f"{chunks} chunks for {lines} lines"


@pytest.mark.django_db(transaction=True)
@pytest.mark.engine
def test_a_stage_that_blocks_after_a_line_has_it_stored_while_it_runs(
    settings, real_services, project, registry, git_server
):
    settings.DOCKER_HOST = real_services["DOCKER_HOST"]
    settings.EXECUTIONS_RUN_INLINE = False
    marker = unique_name("flush")
    dockerfile = f'FROM localhost/busybox:latest\nRUN echo "waiting {marker}" && sleep 300\n'
    workflow, _ = make_git_workflow(
        project, git_server, sample_app_files(extra={"Dockerfile": dockerfile}), registry=registry
    )
    execution = start_run(workflow)
    worker = run_in_thread(execution.pk)
    try:  # the step sleeps for 300 s after its line: only a flush while it runs shows it
        wait_for(lambda: f"waiting {marker}" in log_text(execution), 120, "the step's line")
        assert stage(execution, "build").status == StageStatus.RUNNING
    finally:
        from executions.services import do_terminate

        do_terminate(execution)
        worker.join(settings.TERMINATION_GRACE_SECONDS + 30)
    execution.refresh_from_db()
    assert execution.status == S.TERMINATED, execution.status_reason
