"""DORA's four metrics on a seeded history of one service in prod, against values computed by
hand; the releases page shows them with the period, the history per environment, who rolled
back when, and never offers to roll back to the release running now."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from executions.dora import dora_metrics
from executions.models import Execution, Release, StageRun

pytestmark = pytest.mark.django_db

HOUR = 3600
DAY = 24 * HOUR


def seed(workflow, users):
    """prod's history, `now` minus:
    R0 40 d (outside the 30-day period); R1 20 d (commit 2 h older); R2 15 d (commit 6 h
    older), rolled back 30 min later by R3; a deploy that failed 10 d ago (started then);
    R4 5 d (commit 1 h older)."""
    now = timezone.now()
    prod = workflow.deploy_steps.get(environment__name="prod").environment
    number = iter(range(1, 100))
    releases = {}

    def run(trigger="manual"):
        return Execution.objects.create(
            workflow=workflow, number=next(number), trigger=trigger, status="succeeded"
        )

    def deploy_stage(execution, start, end, status):
        StageRun.objects.create(
            execution=execution,
            position=1,
            kind="deploy",
            name="Deploy prod",
            environment=prod,
            status=status,
            started_at=start,
            finished_at=end,
        )

    def release(name, age, commit_age=None, rollback_of=None):
        execution = run("rollback" if rollback_of else "manual")
        at = now - age
        sha = f"{name:0<40}"[:40].replace("R", "a")
        if commit_age is not None:
            StageRun.objects.create(
                execution=execution,
                position=0,
                kind="source",
                name="Source",
                status="succeeded",
                output={"commits": [{"sha": sha, "date": (now - commit_age).isoformat()}]},
            )
        deploy_stage(execution, at - timedelta(minutes=2), at, "succeeded")
        made = Release.objects.create(
            environment=prod,
            service=workflow.service,
            workflow=workflow,
            execution=execution,
            image=f"reg/web:{name}",
            commit_sha=sha,
            deployed_by=users["bob"],
            is_rollback=rollback_of is not None,
            rollback_of=rollback_of,
        )
        Release.objects.filter(pk=made.pk).update(created_at=at)
        made.refresh_from_db()
        releases[name] = made
        return made

    release("R0", timedelta(days=40), timedelta(days=40, hours=1))
    r1 = release("R1", timedelta(days=20), timedelta(days=20, hours=2))
    release("R2", timedelta(days=15), timedelta(days=15, hours=6))
    release("R3", timedelta(days=15) - timedelta(minutes=30), rollback_of=r1)
    failed = run()
    deploy_stage(
        failed, now - timedelta(days=10), now - timedelta(days=10) + timedelta(minutes=5), "failed"
    )
    release("R4", timedelta(days=5), timedelta(days=5, hours=1))
    # What do_record_release keeps up to date: the release prod runs now.
    Release.objects.filter(pk=releases["R4"].pk).update(is_current=True)
    return now, prod, releases


def test_dora_figures_equal_hand_computed_values(workflow, users):
    now, prod, _ = seed(workflow, users)
    m = dora_metrics(workflow.service, prod, now, days=30)
    # Deployments: R1, R2, R4 and the failed one (R0 is outside, R3 is a rollback run).
    assert m["deployments"] == 4
    assert m["successful_deployments"] == 3
    assert m["deployment_frequency_per_day"] == round(3 / 30, 4)
    # Lead time: 2 h, 6 h, 1 h → median 2 h.
    assert m["lead_time_seconds"] == pytest.approx(2 * HOUR, abs=1)
    assert m["lead_time_samples"] == 3
    # Failures: the failed deploy and R2 (rolled back) → 2 of 4.
    assert m["change_failures"] == 2
    assert m["change_failure_rate"] == 0.5
    # Restore: R2 → R3 30 min; the failed deploy → R4 5 days later; median of the two.
    assert m["time_to_restore_seconds"] == pytest.approx((30 * 60 + 5 * DAY) / 2, abs=1)
    assert m["restored"] == 2 and m["unrestored"] == 0
    assert m["period"]["days"] == 30


def test_releases_page_shows_dora_history_and_rollbacks(client, workflow, users):
    _, prod, releases = seed(workflow, users)
    client.force_login(users["bob"])
    page = client.get(f"/services/{workflow.service_id}/where/?environment={prod.pk}&period=30d")
    text = page.content.decode()
    dora = text.split('data-testid="dora-prod"')[1].split("</tr>")[0]
    assert "0.10 per day" in dora and "(3 in 30 days)" in dora
    assert "50%" in dora and "(2 of 4)" in dora
    assert "2m 00s" not in dora and "2h 00m" in dora
    assert f"rolled back to #{releases['R1'].pk} by bob" in text
    # R4 runs now: no rollback to it; every earlier release has one.
    assert f'data-testid="rollback-{releases["R4"].pk}"' not in text
    for name in ("R0", "R1", "R2", "R3"):
        assert f'data-testid="rollback-{releases[name].pk}"' in text
    # The workflow page and the dashboard link here.
    assert (
        f"/services/{workflow.service_id}/where/"
        in client.get(f"/workflows/{workflow.pk}/").content.decode()
    )
    assert f"/services/{workflow.service_id}/where/" in client.get("/").content.decode()


def test_rollback_to_the_current_release_is_refused(client, workflow, users):
    _, _prod, releases = seed(workflow, users)
    client.force_login(users["bob"])
    response = client.post(
        f"/services/{workflow.service_id}/where/", {"release": releases["R4"].pk}, follow=True
    )
    assert f"runs release #{releases['R4'].pk} already" in response.content.decode()
    assert not Execution.objects.filter(trigger="rollback").exclude(number=4).exists()


def test_dora_api(workflow, users):
    from tests.base import client_for

    _, prod, _ = seed(workflow, users)
    client = client_for(users["carol"])
    url = f"/api/releases/dora/?service={workflow.service_id}"
    body = client.get(f"{url}&environment={prod.pk}&period=30d").json()
    assert [m["environment"] for m in body["environments"]] == ["prod"]
    assert body["environments"][0]["change_failure_rate"] == 0.5
    assert client.get(f"{url}&period=1y").status_code == 400
    assert client.get("/api/releases/dora/").status_code == 400
    assert client_for(users["erin"]).get(url).status_code == 404
