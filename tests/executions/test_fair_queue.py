"""Fair under bursts: which queued run a worker takes next, each project's limit on runs at once,
and the place and reason a queued run shows (API field `queue`, the run page).

Workers take runs with `executions.scheduler.claim_next`, what every worker process's dispatcher
calls (executions/supervisor.py); the worker ids stand for processes on two machines.
"""

from __future__ import annotations

import threading

import pytest
from django.db import close_old_connections, connections
from django.test import Client

from executions.models import Execution
from executions.scheduler import claim_next, claim_run
from executions.services import do_create_execution
from executions.status import ExecutionStatus as S
from tests import base

MACHINE_A = "machine-a:101:aaaaaa"
MACHINE_B = "machine-b:202:bbbbbb"


def queue_runs(workflow, count: int) -> list[Execution]:
    """`count` Pending runs, as a burst of pushes makes them (the workers are played here)."""
    return [
        do_create_execution(workflow, ref="main", trigger="webhook", enqueue=False)
        for _ in range(count)
    ]


@pytest.fixture
def two_projects(users):
    burst = base.make_project(users, name="burst")
    single = base.make_project(users, name="single")
    return (
        base.make_service(burst, name="api").workflows.get(),
        base.make_service(single, name="web").workflows.get(),
    )


@pytest.mark.django_db
def test_a_burst_does_not_starve_another_projects_single_push(two_projects, users, settings):
    settings.PROJECT_MAX_CONCURRENT_RUNS = 1000
    burst, single = two_projects
    burst_runs = queue_runs(burst, 200)  # the Monday-morning burst, all older than ...
    (lonely,) = queue_runs(single, 1)  # ... the other project's one push

    client = base.client_for(users["alice"])
    place = client.get(f"/api/executions/{lonely.pk}/").json()["queue"]
    # The burst's first run goes first (oldest), then the project with nothing running.
    assert place["position"] == 2, place
    assert client.get(f"/api/executions/{burst_runs[0].pk}/").json()["queue"]["position"] == 1
    assert client.get(f"/api/executions/{burst_runs[1].pk}/").json()["queue"]["position"] == 3

    taken = claim_next(MACHINE_A, slots=2)
    assert [e.pk for e in taken] == [burst_runs[0].pk, lonely.pk]
    lonely.refresh_from_db()
    assert lonely.status == S.RUNNING and lonely.worker_id == MACHINE_A
    assert client.get(f"/api/executions/{lonely.pk}/").json()["queue"] is None

    # While the burst's project holds runs, a new push of the other project is taken first.
    (second,) = queue_runs(single, 1)
    Execution.objects.filter(pk=lonely.pk).update(status=S.SUCCEEDED, worker_id="")
    assert [e.pk for e in claim_next(MACHINE_B, slots=1)] == [second.pk]


@pytest.mark.django_db
def test_project_limit_holds_across_workers(two_projects, users, settings):
    settings.PROJECT_MAX_CONCURRENT_RUNS = 3
    burst, single = two_projects
    burst_runs = queue_runs(burst, 10)
    (lonely,) = queue_runs(single, 1)

    taken_a = claim_next(MACHINE_A, slots=2)
    taken_b = claim_next(MACHINE_B, slots=10)  # room for 10, but the project may hold 3
    held = Execution.objects.filter(workflow=burst, status=S.RUNNING).exclude(worker_id="")
    assert held.count() == 3
    assert {e.worker_id for e in held} == {MACHINE_A, MACHINE_B}
    assert lonely.pk in {e.pk for e in taken_a + taken_b}
    assert claim_next(MACHINE_A, slots=10) == []

    waiting = burst_runs[-1]
    client = base.client_for(users["alice"])
    place = client.get(f"/api/executions/{waiting.pk}/").json()["queue"]
    assert place == {
        "position": 7,
        "reason": "its project has 3 runs running, the most it may run at once (3)",
    }
    listed = client.get("/api/executions/", {"workflow": burst.pk}).json()["results"]
    assert [r["queue"]["position"] for r in listed if r["queue"]] == [7, 6, 5, 4, 3, 2, 1]
    browser = Client()
    browser.force_login(users["alice"])
    page = browser.get(f"/executions/{waiting.pk}/")
    assert page.status_code == 200
    # The run page starts from this state (json_script) and shows it next to the status.
    assert page.context["config"]["state"]["queue"] == place

    # A run that ends frees its project's slot: the oldest waiting run of the project is next.
    Execution.objects.filter(pk__in=[e.pk for e in held]).update(status=S.SUCCEEDED, worker_id="")
    next_ones = claim_next(MACHINE_B, slots=1)
    assert [e.pk for e in next_ones] == [burst_runs[3].pk]


@pytest.mark.django_db
def test_resumed_run_is_queued_until_a_worker_takes_it(two_projects, users):
    burst, _ = two_projects
    (run,) = queue_runs(burst, 1)
    # Resumed after a gate: Running, nobody holds it yet.
    Execution.objects.filter(pk=run.pk).update(status=S.RUNNING, worker_id="")
    client = base.client_for(users["alice"])
    assert client.get(f"/api/executions/{run.pk}/").json()["queue"]["position"] == 1
    assert [e.pk for e in claim_next(MACHINE_A, slots=5)] == [run.pk]
    assert client.get(f"/api/executions/{run.pk}/").json()["queue"] is None


@pytest.mark.django_db
def test_terminating_a_resumed_run_still_queued_ends_it_at_once(two_projects, users):
    """Nobody holds it, so nobody would ever finish a Terminating: it ends Terminated."""
    burst, _ = two_projects
    (run,) = queue_runs(burst, 1)
    Execution.objects.filter(pk=run.pk).update(status=S.RUNNING, worker_id="")
    answer = base.client_for(users["alice"]).post(f"/api/executions/{run.pk}/terminate/")
    assert answer.status_code == 202, answer.content
    run.refresh_from_db()
    assert run.status == S.TERMINATED
    assert run.status_reason == "Terminated by alice before a worker took it up"
    assert set(run.stages.values_list("status", flat=True)) == {"terminated"}
    assert claim_next(MACHINE_A, slots=5) == []


@pytest.mark.django_db(transaction=True)
def test_one_run_is_taken_by_one_worker(users):
    """Eight workers ask for the same run at once: exactly one gets it."""
    project = base.make_project(users, name="race")
    (run,) = queue_runs(base.make_service(project, name="web").workflows.get(), 1)
    results: list = []
    start = threading.Barrier(8)

    def worker(n: int) -> None:
        close_old_connections()
        try:
            start.wait()
            results.append(claim_run(run.pk, f"machine-{n}:1:abc", project.pk))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    winners = [r for r in results if r is not None]
    assert len(results) == 8 and len(winners) == 1
    run.refresh_from_db()
    assert run.status == S.RUNNING and run.worker_id == winners[0].worker_id
    assert run.history.filter(to_status=S.RUNNING).count() == 1
