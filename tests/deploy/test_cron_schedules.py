"""Cron CD schedules through the API, the workflow page and the scheduler's task function
(`fire_due_jobs`, what django-q2's one tick runs): a schedule that never fires is refused,
one failing schedule never blocks another, time zones and DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django_q.models import Schedule
from django_q.scheduler import scheduler

from integrations.local_engine.cron import TICK_NAME, fire_due_jobs, schedule_job
from integrations.local_engine.schedule import next_runs
from integrations.models import ScheduledJob
from tests.base import client_for, queued_tasks

pytestmark = pytest.mark.django_db(transaction=True)
PARIS = ZoneInfo("Europe/Paris")


def page_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def cron_document(service, name: str, cron: str, **deploy) -> dict:
    return {
        "name": name,
        "service": service.pk,
        "pipeline_type": "cron_cd",
        "source": {"kind": "image", "image": "127.0.0.1:5000/team/cron:1"},
        "deploy": {"cron_schedule": cron, "environments": [{"environment": "dev"}], **deploy},
    }


@pytest.fixture
def two_cron_workflows(service, environments, users):
    client = client_for(users["alice"])
    made = []
    for name in ("reports", "cleanup"):
        answer = client.post(
            "/api/workflows/", cron_document(service, name, "* * * * *"), format="json"
        )
        assert answer.status_code == 201, answer.content
        made.append(answer.json())
    return made


def test_30_february_is_refused_and_never_stops_the_other_schedule(
    two_cron_workflows, service, environments, users
):
    reports, cleanup = two_cron_workflows
    client = client_for(users["alice"])
    # Both deployed: each environment's job scheduled (what the local target's deploy does).
    from workflows.models import Workflow

    dev = environments["dev"] if isinstance(environments, dict) else environments[0]
    for doc in (reports, cleanup):
        schedule_job(Workflow.objects.get(pk=doc["id"]), dev, "* * * * *")

    redeploy = cron_document(service, "cleanup", "0 0 30 2 *")
    answer = client.put(f"/api/workflows/{cleanup['id']}/", redeploy, format="json")
    assert answer.status_code == 400
    [error] = answer.json()["errors"]
    assert error["field"] == "deploy.cron_schedule"
    assert "never fires: no date matches it in the next 5 years" in error["message"]
    assert client.get(f"/api/workflows/{cleanup['id']}/").json()["deploy"]["cron_schedule"] == (
        "* * * * *"
    )
    # Deploying it anyway (a row left by an older version) must not take the other one down.
    ScheduledJob.objects.filter(workflow_id=cleanup["id"]).update(cron="0 0 30 2 *")
    # Only the fixed tick is a django-q2 schedule: its scheduler never meets a user's cron.
    # One fixed tick holds every user schedule (the retention task is the product's own).
    user_facing = Schedule.objects.exclude(name="workflows-retention")
    assert list(user_facing.values_list("name", "cron")) == [(TICK_NAME, "* * * * *")]

    later = datetime.now(UTC) + timedelta(minutes=2)
    result = fire_due_jobs(later)

    good = ScheduledJob.objects.get(workflow_id=reports["id"])
    bad = ScheduledJob.objects.get(workflow_id=cleanup["id"])
    assert result["started"] == [good.pk]
    assert "never fires" in result["failed"][bad.pk]
    assert good.next_run_at > later and bad.next_run_at is None
    assert "never fires" in bad.last_error
    queued = [task["args"] for task in queued_tasks()]
    assert queued == [(reports["id"], dev.pk)]
    # And again next minute: the good one still fires, the stopped one is left alone.
    assert fire_due_jobs(later + timedelta(minutes=1))["started"] == [good.pk]
    page = page_client(users["alice"]).get(f"/workflows/{cleanup['id']}/")
    assert "never fires" in page.content.decode()


def test_django_q_scheduler_runs_the_tick(two_cron_workflows, environments):
    from workflows.models import Workflow

    dev = environments["dev"] if isinstance(environments, dict) else environments[0]
    schedule_job(Workflow.objects.get(pk=two_cron_workflows[0]["id"]), dev, "* * * * *")
    Schedule.objects.filter(name=TICK_NAME).update(next_run=datetime.now(UTC) - timedelta(1))
    scheduler()
    # The scheduler queued the tick (Redis keeps other tests' tasks in the session's queue).
    assert "integrations.local_engine.cron.fire_due_jobs" in [t["func"] for t in queued_tasks()]


def test_time_zone_is_validated_and_next_three_runs_shown(service, environments, users):
    client = client_for(users["alice"])
    bad = cron_document(service, "nightly", "30 2 * * *", cron_time_zone="Mars/Olympus")
    answer = client.post("/api/workflows/", bad, format="json")
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "deploy.cron_time_zone"

    good = cron_document(service, "nightly", "30 2 * * *", cron_time_zone="Europe/Paris")
    answer = client.post("/api/workflows/", good, format="json")
    assert answer.status_code == 201, answer.content
    doc = answer.json()
    assert doc["deploy"]["cron_time_zone"] == "Europe/Paris"
    runs = [datetime.fromisoformat(t) for t in doc["next_runs"]]
    assert len(runs) == 3
    assert all(t.astimezone(PARIS).strftime("%H:%M") == "02:30" for t in runs)
    page = page_client(users["alice"]).get(f"/workflows/{doc['id']}/").content.decode()
    assert page.count("02:30") >= 3 and "Europe/Paris" in page


def fire_through(job: ScheduledJob, start: datetime, end: datetime) -> list[datetime]:
    """Calls the scheduler's task at each due time from `start` to `end`: the run times."""
    first = next_runs(job.cron, job.time_zone, start, 1)[0]
    ScheduledJob.objects.filter(pk=job.pk).update(next_run_at=first)
    fired = []
    while True:
        due = ScheduledJob.objects.get(pk=job.pk).next_run_at
        if due > end:
            return fired
        assert fire_due_jobs(due)["started"] == [job.pk]
        fired.append(due.astimezone(PARIS))


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        # Spring forward, 28 March 2027: 02:30 never shows; it runs once, when the clock jumps.
        ("2027-03-28", ["2027-03-27 02:30", "2027-03-28 03:00", "2027-03-29 02:30"]),
        # Fall back, 31 October 2027: 02:30 shows twice; it runs once, the first time.
        ("2027-10-31", ["2027-10-30 02:30", "2027-10-31 02:30", "2027-11-01 02:30"]),
    ],
)
def test_dst_neither_skips_nor_doubles_a_daily_run(service, environments, users, day, expected):
    from workflows.models import Workflow

    doc = cron_document(service, "nightly", "30 2 * * *", cron_time_zone="Europe/Paris")
    made = client_for(users["alice"]).post("/api/workflows/", doc, format="json").json()
    dev = environments["dev"] if isinstance(environments, dict) else environments[0]
    workflow = Workflow.objects.get(pk=made["id"])
    schedule_job(workflow, dev, workflow.cron_schedule, workflow.cron_time_zone)
    job = ScheduledJob.objects.get(workflow=workflow)
    middle = datetime.fromisoformat(day).replace(tzinfo=PARIS)
    fired = fire_through(job, middle - timedelta(days=1), middle + timedelta(days=1, hours=12))
    assert [t.strftime("%Y-%m-%d %H:%M") for t in fired][:3] == expected
