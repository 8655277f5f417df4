"""The local target end to end on real parts: git over HTTP, a podman build and push, then the
same manifests played on podman and the app answering on localhost; each pipeline type; a
crash rolled back; release history and rollback; older commits refused; one deploy per
environment at a time, oldest first; terminate during a deploy."""

from __future__ import annotations

import socket
import time

import pytest
from django_q.models import Schedule

from executions.cron_jobs import run_cron_job
from executions.engine import run_execution
from executions.models import DeployLock, Execution, Release
from executions.services import do_create_execution, do_terminate
from executions.status import ExecutionStatus as S
from integrations.kubernetes.manifests import INSTANCE_LABEL
from integrations.local_engine.podman import Podman
from integrations.models import ScheduledJob
from tests import base
from tests.deploy import (
    answers,
    deploy_only,
    free_ports,
    get,
    log_text,
    run,
    run_in_thread,
    stage_output,
    start_deploy,
    wait_for,
)
from tests.realparts import sample_app_files, unique_name
from workflows.models import CIVariable, Workflow

pytest_plugins = ["tests.realparts"]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]


def run_workflow(workflow) -> Execution:
    execution = do_create_execution(workflow, ref="main", trigger="manual")
    run_execution(execution.pk)
    execution.refresh_from_db()
    return execution


def set_image(workflow, ref: str) -> None:
    Workflow.objects.filter(pk=workflow.pk).update(source_image=ref)
    workflow.refresh_from_db()


def test_source_build_push_deploy_dev_then_staging_answers_on_localhost(
    local, project, local_envs, git_server
):
    base.make_registry(project)
    marker = unique_name("demo")
    name = unique_name("web")
    sha = git_server.create_repo(name, sample_app_files(run_steps=1, marker=marker))
    service = base.make_service(
        project,
        name=name,
        repo_url=git_server.repo_url(name),
        git_username=git_server.user,
        git_token=git_server.password,
    )
    port = free_ports(2, 21100)
    workflow = base.save_document(
        service,
        {
            "name": "deliver",
            "pipeline_type": "app_cd",
            "source": {"kind": "git", "trigger": "manual"},
            "push": {"registry": "local", "repository": f"workflows-tests/{name}"},
            "deploy": {
                "port": port,
                "health_check_path": "/index.html",
                "environments": [{"environment": "dev"}, {"environment": "staging"}],
            },
        },
    )
    execution = run_workflow(workflow)

    assert execution.status == S.SUCCEEDED, execution.status_reason
    assert list(execution.stages.values_list("name", "status")) == [
        ("Source", "succeeded"),
        ("Build", "succeeded"),
        ("Push", "succeeded"),
        ("Deploy dev", "succeeded"),
        ("Deploy staging", "succeeded"),
    ]
    dev, staging = (
        Release.objects.get(execution=execution, environment=e) for e in local_envs.values()
    )
    assert dev.commit_sha == staging.commit_sha == sha
    assert dev.image_digest == staging.image_digest == execution.image_digest
    assert dev.created_at < staging.created_at
    assert (dev.details["url"], staging.details["url"]) == (
        f"http://127.0.0.1:{port}/",
        f"http://127.0.0.1:{port + 1}/",
    )
    for url in (dev.details["url"], staging.details["url"]):
        assert f"<p id=marker>{marker}</p>" in get(url)
    assert f"The app answers at http://127.0.0.1:{port + 1}/" in log_text(execution)
    # Published on this machine only (DEPLOY_LOCAL_HOST_IP): the machine's other addresses refuse.
    for address in outside_addresses():
        with socket.socket() as sock:
            sock.settimeout(2)
            assert sock.connect_ex((address, port)) != 0, f"{address}:{port} answers"


def outside_addresses() -> set[str]:
    """This machine's IPv4 addresses other than loopback: the one its default route leaves by
    (a UDP connect sends nothing) and its hostname's."""
    found = set(socket.gethostbyname_ex(socket.gethostname())[2])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            found.add(probe.getsockname()[0])
        except OSError:
            pass  # no default route
    found = {a for a in found if not a.startswith("127.")}
    assert found, "no address other than loopback to check from"
    return found


def test_worker_runs_and_cron_runs_a_real_container(local, project, service, local_envs, images):
    worker_image, _ = images.other("worker")
    worker = deploy_only(service, worker_image, ptype="worker_cd", envs=("dev",))
    CIVariable.objects.create(workflow=worker, key="QUEUE", value="emails", scope="runtime")
    execution = run_workflow(worker)
    assert execution.status == S.SUCCEEDED, execution.status_reason
    assert f"{service.project.name}-{service.name}-release-dev is running" in log_text(execution)
    assert "url" not in Release.objects.get(execution=execution).details

    cron_image, digest = images.other("cron")
    cron = base.save_document(
        service,
        {
            "name": "nightly",
            "pipeline_type": "cron_cd",
            "source": {"kind": "image", "image": cron_image},
            "deploy": {"cron_schedule": "*/5 * * * *", "environments": [{"environment": "dev"}]},
        },
    )
    CIVariable.objects.create(workflow=cron, key="QUEUE", value="reports", scope="runtime")
    CIVariable.objects.create(
        workflow=cron, key="TOKEN", secret_value="tok-5150", is_secret=True, scope="runtime"
    )
    execution = run_workflow(cron)
    assert execution.status == S.SUCCEEDED, execution.status_reason
    job = ScheduledJob.objects.get(workflow=cron, environment=local_envs["dev"])
    assert (job.cron, job.time_zone, job.last_error) == ("*/5 * * * *", "UTC", "")
    assert job.next_run_at is not None and job.next_run_at.minute % 5 == 0
    tick = Schedule.objects.get(name="workflows-cron-tick")
    assert (tick.func, tick.cron) == ("integrations.local_engine.cron.fire_due_jobs", "* * * * *")

    result = run_cron_job(cron.pk, local_envs["dev"].pk)  # what the scheduler's task runs
    assert result["exit_code"] == 0, result
    assert result["logs"] == "cron job ran for reports with token tok-5150"
    release = Release.objects.get(execution=execution)
    assert result["release"] == release.pk
    assert release.details["job_pod"]["spec"]["containers"][0]["image"].endswith(digest)
    assert "tok-5150" not in str(release.details)


def test_a_crashing_release_is_rolled_back(local, service, local_envs, images):
    good, _ = images.app("good")
    port = free_ports(1, 21200)
    workflow = deploy_only(service, good, port=port)
    first = run_workflow(workflow)
    assert first.status == S.SUCCEEDED, first.status_reason
    set_image(workflow, images.other("crash")[0])

    crashed = run_workflow(workflow)
    assert crashed.status == S.FAILED
    previous = Release.objects.get(execution=first)
    assert "CrashLoopBackOff" in crashed.status_reason
    assert "exited with code 3: the app cannot start" in crashed.status_reason
    assert f"rolled back to release #{previous.pk}" in crashed.status_reason
    assert "<p id=marker>good</p>" in get(f"http://127.0.0.1:{port}/")


def test_a_first_release_that_crashes_leaves_no_pod(local, service, local_envs, images):
    """podman restarts a crashed container at once (no CrashLoopBackOff delay): a failed first
    release with nothing to roll back to is removed, not left restarting every second."""
    workflow = deploy_only(service, images.other("crash")[0], port=free_ports(1, 21250))
    crashed = run_workflow(workflow)
    assert crashed.status == S.FAILED
    assert "there is no earlier release to roll back to" in crashed.status_reason
    name = f"{service.project.name}-{service.name}-release-dev"
    assert f"Removed pod {name}" in log_text(crashed)
    assert Podman().pods(f"{INSTANCE_LABEL}={name}") == []


def test_a_release_that_never_answers_says_what_the_checks_got(
    local, settings, service, local_envs, images
):
    """The reason names the URL, what the last attempt got and the app's last log line: what a
    user needs to tell a wrong port from a slow start."""
    settings.DEPLOY_LOCAL_READY_SECONDS = 2
    port = free_ports(1, 21280)
    workflow = deploy_only(service, images.other("deaf")[0], port=port)
    failed = run_workflow(workflow)
    assert failed.status == S.FAILED
    name = f"{service.project.name}-{service.name}-release-dev"
    assert (
        f"{name} not ready: http://127.0.0.1:{port}/ did not answer (Connection refused) "
        f"within 2 s; it last printed: listening on 9 instead of {port}"
    ) in failed.status_reason
    assert Podman().pods(f"{INSTANCE_LABEL}={name}") == []


def test_history_rollback_and_older_commits_refused(local, service, local_envs, images, users):
    (v1, d1), (v2, d2) = images.app("one"), images.app("two")
    port = free_ports(1, 21300)
    workflow = deploy_only(service, v1, port=port)
    first = run_workflow(workflow)
    set_image(workflow, v2)
    second = run_workflow(workflow)
    assert (first.status, second.status) == (S.SUCCEEDED, S.SUCCEEDED)
    assert "<p id=marker>two</p>" in get(f"http://127.0.0.1:{port}/")
    one, two = Release.objects.get(execution=first), Release.objects.get(execution=second)

    set_image(workflow, v1)  # a plain run of the older image is refused
    older = run_workflow(workflow)
    assert older.status == S.FAILED
    assert older.status_reason == (
        f"Deploy dev: refusing to deploy {d1[7:19]} to dev: it is older than {d2[7:19]} "
        f"(release #{two.pk}) that runs there; to go back, roll back to release #{one.pk} "
        "or an earlier release"
    )
    assert "<p id=marker>two</p>" in get(f"http://127.0.0.1:{port}/")

    client = base.client_for(users["bob"])
    history = client.get(f"/api/releases/?service={service.pk}").json()["results"]
    assert [r["id"] for r in history] == [two.pk, one.pk]
    response = client.post(f"/api/releases/{one.pk}/rollback/")
    assert response.status_code == 201, response.content
    rollback = Execution.objects.get(pk=response.json()["id"])
    assert rollback.trigger == "rollback"
    assert [s.name for s in rollback.stages.all()] == ["Deploy dev"]  # no Source, no Build
    rollback = run(rollback)
    assert rollback.status == S.SUCCEEDED, rollback.status_reason
    three = Release.objects.get(execution=rollback)
    assert (three.is_rollback, three.rollback_of, three.image_digest) == (True, one, d1)
    assert three.deployed_by == users["bob"]
    assert "<p id=marker>one</p>" in get(f"http://127.0.0.1:{port}/")
    where = client.get(f"/api/releases/what-runs-where/?service={service.pk}").json()
    assert [(row["environment"], [r["id"] for r in row["releases"]]) for row in where["where"]] == [
        ("dev", [three.pk]),
        ("staging", []),
    ]


def test_one_deploy_per_environment_waits_then_runs_oldest_first(
    local, service, local_envs, images
):
    slow, _ = images.app("slow", delay=2)  # answers 2 s after it starts
    fast, fast_digest = images.app("fast")
    workflow = deploy_only(service, slow, port=free_ports(1, 21400))
    first = do_create_execution(workflow, ref="main", trigger="manual")
    # Two more deploys of the same service to the same environment, created in this order.
    second, third = (start_deploy(workflow, local_envs["dev"], fast, fast_digest) for _ in "23")
    threads = [run_in_thread(first.pk)]
    wait_for(lambda: "Played Deployment/" in log_text(first), 20, "the first to deploy")
    threads.append(run_in_thread(third.pk))  # the newest starts waiting first ...
    wait_for(lambda: "Waiting for" in log_text(third), 10, "the third to wait")
    threads.append(run_in_thread(second.pk))  # ... but the older one goes before it
    wait_for(lambda: "Waiting for" in log_text(second), 10, "the second to wait")
    for thread in threads:
        thread.join(60)

    runs = [Execution.objects.get(pk=e.pk) for e in (first, second, third)]
    assert [e.status for e in runs] == [S.SUCCEEDED] * 3, [e.status_reason for e in runs]
    deploys = [e.stages.get(kind="deploy") for e in runs]
    releases = [Release.objects.get(execution=e) for e in runs]
    # The three deploy stages overlapped in time, the releases came one after the other, in
    # the order the runs were created.
    assert deploys[2].started_at < deploys[1].started_at < releases[0].created_at
    assert releases[0].created_at < releases[1].created_at < releases[2].created_at
    assert deploys[0].finished_at <= deploys[1].finished_at <= deploys[2].finished_at
    waited = [stage_output(e)["waited_for_lock_seconds"] for e in runs]
    assert waited[0] < 0.5 < waited[1] < waited[2]
    blocker = f"{runs[0].workflow} #{runs[0].number}"
    assert f"Waiting for {blocker} to deploy to dev first" in log_text(runs[1])
    assert f"Waiting for {blocker} to deploy to dev first" in log_text(runs[2])
    assert not DeployLock.objects.exists()


def test_terminate_during_a_deploy_leaves_the_previous_release(local, service, local_envs, images):
    good, _ = images.app("before")
    port = free_ports(1, 21500)
    workflow = deploy_only(service, good, port=port)
    first = run_workflow(workflow)
    assert first.status == S.SUCCEEDED, first.status_reason
    previous = Release.objects.get(execution=first)
    set_image(workflow, images.other("silent")[0])  # runs, never answers on its port

    execution = do_create_execution(workflow, ref="main", trigger="manual")
    thread = run_in_thread(execution.pk)
    wait_for(lambda: "Played Deployment/" in log_text(execution), 30, "the new pod played")
    started = time.monotonic()
    do_terminate(execution)
    thread.join(30)
    execution.refresh_from_db()

    assert execution.status == S.TERMINATED
    assert time.monotonic() - started < 15
    where = f"dev is back on release #{previous.pk} ({previous.version})"
    assert execution.status_reason == f"Terminated during Deploy dev: {where}"
    assert execution.stages.get(kind="deploy").error == where
    assert f"Terminated: {where}" in log_text(execution)
    wait_for(lambda: answers(f"http://127.0.0.1:{port}/"), 10, "the previous release")
    assert "<p id=marker>before</p>" in get(f"http://127.0.0.1:{port}/")
    assert not Release.objects.filter(execution=execution).exists()
