"""The terminal commands on real parts: `run_workflow` starts a run and follows it like
`gh run watch` (exit code 0 only for Succeeded; Ctrl-C asks whether to terminate), `runs` lists
recent runs and terminates one."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from executions.models import Execution
from executions.status import ExecutionStatus as S
from executions.status import StageStatus
from tests import base
from tests.executions import leftovers, make_git_workflow, start_run, step_containers
from tests.realparts import sample_app_files, unique_name

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]

ROOT = Path(__file__).resolve().parents[2]
DEMO_APP = ROOT / "workflows" / "demo_app"


def demo_files() -> dict[str, str]:
    return {p.name: p.read_text() for p in DEMO_APP.iterdir() if p.is_file()}


class Command:
    """`manage.py <args>` in a subprocess on the test database, its output read as it comes."""

    def __init__(self, *args: str):
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": base.database_url(),
            "PYTHONUNBUFFERED": "1",
        }
        # A terminal's foreground job starts with Ctrl-C's default action. An ignored SIGINT is
        # inherited through exec: pytest started in the background by a script (`pytest &`,
        # which ignores SIGINT there) would otherwise start commands that never see the Ctrl-C.
        inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            self.process = self.spawn(args, env)
        finally:
            if inherited is not None:  # None: set outside Python, nothing to put back
                signal.signal(signal.SIGINT, inherited)
        self.output: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    @staticmethod
    def spawn(args: tuple[str, ...], env: dict[str, str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, like a terminal's foreground job
        )

    def _read(self) -> None:
        assert self.process.stdout is not None
        while chunk := self.process.stdout.read(1):
            self.output.append(chunk)

    def text(self) -> str:
        return "".join(self.output)

    def wait_for_output(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.text():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"no {text!r} in the output:\n{self.text()}")
            time.sleep(0.05)

    def wait(self, timeout: float) -> int:
        code = self.process.wait(timeout)
        self.reader.join(5)
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@pytest.fixture
def command(transactional_db):
    started: list[Command] = []

    def start(*args: str) -> Command:
        started.append(Command(*args))
        return started[-1]

    yield start
    for cmd in started:
        cmd.stop()


def test_run_workflow_follows_a_succeeding_run(engine, project, registry, git_server):
    workflow, sha = make_git_workflow(
        project, git_server, demo_files(), registry=registry, cache_enabled=False
    )
    name = f"demo/{workflow.service.name}"
    out = io.StringIO()

    call_command("run_workflow", name, "--inline", stdout=out)  # returns: exit code 0

    text = out.getvalue()
    execution = Execution.objects.get(workflow=workflow)
    assert execution.status == S.SUCCEEDED, text
    assert text.startswith(f"Started {execution} (id {execution.pk}) at main\n")
    # Stage by stage: a header, the stage's lines, then how it ended.
    stage_lines = [
        "▶ Source\n",
        "$ git clone",
        f"Checked out {sha[:12]}: init",
        "▶ Source: Succeeded",
        "▶ Build\n",
        "\nbuilding the demo app\n",  # a RUN step's output
        "▶ Build: Succeeded",
        "▶ Push\n",
        f"Pushing {execution.image}",
        "▶ Push: Succeeded",
    ]
    positions = [text.find(line) for line in stage_lines]
    assert all(p >= 0 for p in positions), list(zip(stage_lines, positions, strict=True))
    assert positions == sorted(positions), text
    assert text.rstrip().endswith(f"{execution}: Succeeded")


def test_run_workflow_exits_1_with_the_reason(engine, command, project, registry, git_server):
    dockerfile = 'FROM localhost/busybox:latest\nRUN echo "about to fail" && exit 3\n'
    workflow, _ = make_git_workflow(
        project, git_server, sample_app_files(extra={"Dockerfile": dockerfile}), registry=registry
    )
    run = command("run_workflow", str(workflow.pk), "--inline")

    assert run.wait(90) == 1, run.text()
    execution = Execution.objects.get(workflow=workflow)
    assert execution.status == S.FAILED
    lines = run.text().splitlines()
    assert "about to fail" in lines
    assert "▶ Build: Failed — " + execution.stages.get(kind="build").error in lines
    assert lines[-1] == f"{execution}: Failed — {execution.status_reason}"
    assert execution.status_reason.startswith("Build: build failed:")


def test_ctrl_c_asks_and_terminates_the_run(engine, command, project, registry, git_server):
    marker = unique_name("ctrlc")
    dockerfile = f'FROM localhost/busybox:latest\nRUN echo "long step {marker}" && sleep 120\n'
    workflow, _ = make_git_workflow(
        project, git_server, sample_app_files(extra={"Dockerfile": dockerfile}), registry=registry
    )
    started = time.time()
    run = command("run_workflow", str(workflow.pk), "--inline")
    run.wait_for_output(f"\nlong step {marker}\n", 90)
    execution = Execution.objects.get(workflow=workflow)
    assert execution.status == S.RUNNING

    os.killpg(run.process.pid, signal.SIGINT)  # Ctrl-C in a terminal: its foreground group
    run.wait_for_output(f"Terminate {execution}? [y/N]", 10)
    assert Execution.objects.get(pk=execution.pk).status == S.RUNNING  # only asked so far
    assert run.process.stdin is not None
    run.process.stdin.write("y\n")
    run.process.stdin.flush()

    assert run.wait(60) == 1, run.text()
    execution.refresh_from_db()
    assert execution.status == S.TERMINATED, execution.status_reason
    assert execution.stages.get(kind="build").status == StageStatus.TERMINATED
    text = run.text()
    assert "Termination requested; following until it ends." in text
    assert text.rstrip().endswith(f"{execution}: Terminated — {execution.status_reason}")
    assert step_containers(marker) == []
    assert leftovers(execution, started, marker) == {"containers": [], "steps": []}


def test_ctrl_c_answered_no_goes_on_following(engine, command, project, registry, git_server):
    marker = unique_name("ctrlc-no")
    dockerfile = f'FROM localhost/busybox:latest\nRUN echo "short step {marker}" && sleep 2\n'
    workflow, _ = make_git_workflow(
        project, git_server, sample_app_files(extra={"Dockerfile": dockerfile}), registry=registry
    )
    run = command("run_workflow", str(workflow.pk), "--inline")
    run.wait_for_output(f"\nshort step {marker}\n", 90)
    os.killpg(run.process.pid, signal.SIGINT)
    run.wait_for_output("? [y/N]", 10)
    assert run.process.stdin is not None
    run.process.stdin.write("\n")
    run.process.stdin.flush()

    assert run.wait(60) == 0, run.text()
    assert Execution.objects.get(workflow=workflow).status == S.SUCCEEDED


def test_runs_lists_and_terminates(workflow):
    first, second = start_run(workflow), start_run(workflow)  # Pending: no worker here
    out = io.StringIO()
    call_command("runs", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["ID", "RUN", "STATUS", "REF", "COMMIT", "REASON"]
    listed = {int(line.split()[0]): line for line in lines[1:]}
    assert set(listed) >= {first.pk, second.pk}
    assert f"demo/web/deliver #{first.number}" in listed[first.pk]
    assert "Pending" in listed[first.pk]

    out = io.StringIO()
    call_command("runs", "--workflow", "demo/web/deliver", "--limit", "1", stdout=out)
    assert len(out.getvalue().splitlines()) == 2  # the header and the newest run

    out = io.StringIO()
    call_command("runs", "--terminate", str(first.pk), stdout=out)
    assert out.getvalue().strip() == f"{first}: Terminated"
    assert Execution.objects.get(pk=first.pk).status == S.TERMINATED
    assert Execution.objects.get(pk=second.pk).status == S.PENDING

    with pytest.raises(CommandError, match="cannot move from Terminated"):
        call_command("runs", "--terminate", str(first.pk), stdout=io.StringIO())
    with pytest.raises(CommandError, match="no run with id 999999"):
        call_command("runs", "--terminate", "999999", stdout=io.StringIO())


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("demo/nope", 'no workflow "demo/nope"'),
        ("demo/web/nope", 'no workflow "demo/web/nope"'),
        ("999999", 'no workflow "999999"'),
        ("just-a-name", '"just-a-name" is neither an id nor project/service'),
    ],
)
def test_run_workflow_with_an_unknown_workflow(workflow, ref, message):
    with pytest.raises(CommandError, match=message):
        call_command("run_workflow", ref, stdout=io.StringIO())
    assert not Execution.objects.exists()
