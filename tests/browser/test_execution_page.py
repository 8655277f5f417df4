"""The run page in Chromium against the real ASGI server: the log viewer (colour, sections,
search, line links, follow), live status, the buttons each status and role gets, inline errors,
the approval card and the reports tab."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from executions.logs import LogWriter
from executions.models import Execution, Report, StageRun
from executions.services import (
    claim_execution,
    do_change_stage_status,
    do_change_status,
    do_create_execution,
)
from executions.status import ExecutionStatus as S

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

AXE = Path(__file__).resolve().parents[2] / "frontend" / "node_modules" / "axe-core" / "axe.min.js"


def write(execution, *lines, stage=None):
    writer = LogWriter(Execution.objects.get(pk=execution.pk), secrets=["s3cr3t-npm-token"])
    writer.set_stage(stage or execution.stages.first())
    for line in lines:
        writer.line(line)
    writer.flush(final=True)


def visible_lines(page) -> list[str]:
    return page.eval_on_selector_all(
        "[data-testid='log'] .wfr-line .wfr-text", "els => els.map(e => e.textContent)"
    )


def open_run(page, base, execution):
    page.goto(f"{base}/executions/{execution.pk}/")
    page.wait_for_selector("[data-testid='run-status']")


def test_log_streams_live_and_run_ends(workflow, users, asgi_server, page_as):
    execution = do_create_execution(workflow, ref="main", trigger="manual")
    do_change_status(execution, S.RUNNING)
    write(execution, "first line", "second line")
    page = page_as(users["carol"], asgi_server)
    open_run(page, asgi_server, execution)
    page.wait_for_function(
        "document.getElementById('log').textContent.includes('second line')", timeout=10000
    )
    assert page.inner_text("[data-testid='run-status']") == "Running"

    write(execution, "third line with s3cr3t-npm-token")
    page.wait_for_function(
        "document.getElementById('log').textContent.includes('third line')", timeout=10000
    )
    do_change_status(execution, S.SUCCEEDED)
    page.wait_for_selector("body[data-run-ended='succeeded']", timeout=10000)
    assert page.inner_text("[data-testid='run-status']") == "Succeeded"
    assert visible_lines(page) == ["first line", "second line", "third line with ***"]


def test_log_viewer_colour_sections_search_and_line_links(workflow, users, asgi_server, page_as):
    execution = do_create_execution(workflow, ref="main", trigger="manual")
    do_change_status(execution, S.RUNNING)
    source, pre_build = execution.stages.order_by("position")[:2]
    do_change_stage_status(source, "running")
    write(execution, *[f"clone step {i}" for i in range(1, 101)], stage=source)
    do_change_stage_status(source, "succeeded")
    do_change_stage_status(pre_build, "running")
    write(
        execution,
        "\x1b[31mred error text\x1b[0m plain",
        *[f"build output {i}" for i in range(2, 200)],
        "needle at the end",
        stage=pre_build,
    )
    do_change_stage_status(pre_build, "failed", "script failed")
    do_change_status(execution, S.FAILED, "script failed")

    page = page_as(users["carol"], asgi_server)
    page.goto(f"{asgi_server}/executions/{execution.pk}/#L120")
    # #L120 is the 20th line of the second stage: brought into view and marked.
    page.wait_for_selector(".wfr-selected#L120", timeout=10000)
    assert "build output 20" in page.inner_text("#L120")

    # Colour: the ANSI red became a class, the escape code is gone.
    page.fill("[data-testid='log-search']", "red error")
    page.wait_for_selector("#L101 .ansi-red-fg", timeout=5000)
    assert page.inner_text("#L101 .ansi-red-fg") == "red error text"
    assert "\x1b" not in page.inner_text("#L101") and "[31m" not in page.inner_text("#L101")
    assert page.inner_text("#L101 mark.current") == "red error"
    assert page.inner_text("[data-testid='log-search-count']") == "1 of 1"

    # Search with next / previous across stages.
    page.fill("[data-testid='log-search']", "needle")
    page.wait_for_selector("mark.current", timeout=5000)
    assert page.inner_text("[data-testid='log-search-count']") == "1 of 1"
    page.fill("[data-testid='log-search']", "step 10")  # "step 10", "step 100"
    page.wait_for_function(
        "document.querySelector(\"[data-testid='log-search-count']\").textContent === '1 of 2'"
    )
    page.click("[data-testid='log-search-next']")
    page.wait_for_function(
        "document.querySelector(\"[data-testid='log-search-count']\").textContent === '2 of 2'"
    )
    assert page.inner_text("#L100 mark.current") == "step 10"

    # Collapse a stage: its lines leave the viewer, its header stays, with its duration.
    page.fill("[data-testid='log-search']", "")
    page.click("[data-testid='graph-Source']")  # a graph node opens its section's start
    page.click("[data-testid='section-Source']")
    assert page.get_attribute("[data-testid='section-Source']", "aria-expanded") == "false"
    page.wait_for_function("!document.querySelector('#L1')")
    assert page.inner_text("[data-testid='section-duration-Source']").endswith("s")
    page.click("[data-testid='section-Source']")
    page.wait_for_selector("#L1", state="attached")

    # A line link survives a reload.
    page.evaluate("location.hash = '#L140'")  # a link followed from elsewhere
    page.wait_for_selector(".wfr-selected#L140")
    page.click("#L150 .wfr-ln")
    assert page.evaluate("location.hash") == "#L150"
    page.reload()
    page.wait_for_selector(".wfr-selected#L150", timeout=10000)

    # Timestamps toggle; the download link is the masked plain-text log.
    page.check("[data-testid='log-times']")
    page.wait_for_selector("#L150 time.wfr-time")
    href = page.get_attribute("[data-testid='log-download']", "href")
    assert href == f"/api/executions/{execution.pk}/logs/?as=text"

    # Clicking a graph node opens its section, even a collapsed one.
    page.click("[data-testid='graph-Source']")
    page.click("[data-testid='section-Source']")
    page.wait_for_function("!document.querySelector('#L1')")
    page.click("[data-testid='graph-Pre-build script']")
    page.click("[data-testid='graph-Source']")
    page.wait_for_selector("#L1", state="attached")


STATUSES = {
    S.PENDING: {"bob": ["terminate"], "alice": ["terminate"]},
    S.RUNNING: {"bob": ["terminate"]},
    S.DEPLOYMENT_PENDING: {"bob": ["deploy", "terminate"]},
    S.APPROVAL_PENDING: {"bob": ["terminate"]},
    S.FAILED: {"bob": ["rerun", "rerun-failed"]},
    S.SUCCEEDED: {"bob": ["rerun"], "alice": ["rerun"]},
}


def make_status(workflow, status):
    execution = do_create_execution(workflow, ref="main", ref_kind="branch", trigger="manual")
    stages = list(execution.stages.order_by("position"))
    if status == S.PENDING:
        return execution
    do_change_status(execution, S.RUNNING)
    if status == S.SUCCEEDED:
        StageRun.objects.filter(execution=execution).update(status="succeeded")
    elif status == S.FAILED:
        StageRun.objects.filter(pk=stages[0].pk).update(status="succeeded")
        StageRun.objects.filter(pk=stages[1].pk).update(status="failed")
    if status != S.RUNNING:
        do_change_status(execution, status)
    return execution


@pytest.mark.parametrize("status", list(STATUSES))
def test_buttons_follow_status_and_role(status, workflow, users, asgi_server, page_as):
    execution = make_status(workflow, status)
    for name in ("bob", "carol", "dave"):
        expected = STATUSES[status].get(name, [])
        page = page_as(users[name], asgi_server)
        open_run(page, asgi_server, execution)
        page.wait_for_function("document.querySelector('#run-page').dataset.ready")
        shown = page.eval_on_selector_all(
            "[data-testid='actions'] button[data-action]", "els => els.map(e => e.dataset.action)"
        )
        assert shown == expected, (status, name)
        page.context.close()


def test_terminate_confirms_first(workflow, users, asgi_server, page_as):
    execution = do_create_execution(workflow, ref="main", trigger="manual")
    page = page_as(users["bob"], asgi_server)
    open_run(page, asgi_server, execution)
    page.click("[data-testid='terminate']")
    page.click("[data-testid='terminate-cancel']")
    assert Execution.objects.get(pk=execution.pk).status == "pending"
    page.click("[data-testid='terminate']")
    page.click("[data-testid='terminate-confirm']")
    page.wait_for_selector("body[data-run-ended='terminated']", timeout=10000)
    assert Execution.objects.get(pk=execution.pk).status == "terminated"
    page.wait_for_selector("[data-testid='rerun']")  # the buttons follow the new status


def test_action_error_is_inline(workflow, users, asgi_server, page_as):
    execution = make_status(workflow, S.DEPLOYMENT_PENDING)
    page = page_as(users["bob"], asgi_server)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    open_run(page, asgi_server, execution)

    def terminated_meanwhile(route):
        # The run ends between the click and the server's answer: no race with the page's
        # own live update (which would hide the button first).
        do_change_status(Execution.objects.get(pk=execution.pk), S.TERMINATED)
        route.continue_()

    page.route(f"**/api/executions/{execution.pk}/deploy/", terminated_meanwhile)
    page.click("[data-testid='deploy']")
    error = page.wait_for_selector("[data-testid='action-error']", timeout=10000)
    assert "not waiting for a deploy" in error.inner_text()
    assert dialogs == []


def test_rerun_shows_branch_not_sha(workflow, users, asgi_server, page_as):
    from executions.services import do_rerun

    execution = make_status(workflow, S.SUCCEEDED)
    Execution.objects.filter(pk=execution.pk).update(commit_sha="a" * 40)
    rerun = do_rerun(Execution.objects.get(pk=execution.pk), by=users["bob"])
    page = page_as(users["carol"], asgi_server)
    open_run(page, asgi_server, rerun)
    assert page.inner_text("[data-testid='run-ref']") == "main"


def reach_gate(workflow, users, commits=()):
    from executions.engine import Engine

    execution = do_create_execution(
        workflow, ref="main", trigger="manual", triggered_by=users["bob"]
    )
    Execution.objects.filter(pk=execution.pk).update(
        commit_sha="c" * 40,
        image="127.0.0.1:5000/demo/web:main-cccccccccccc",
        image_digest="sha256:" + "d" * 64,
    )
    do_change_status(execution, S.RUNNING)
    for stage in execution.stages.exclude(name="Deploy prod"):
        StageRun.objects.filter(pk=stage.pk).update(status="succeeded")
    StageRun.objects.filter(execution=execution, kind="source").update(
        output={"commit_sha": "c" * 40, "commits": list(commits)}
    )
    prod = execution.stages.get(name="Deploy prod")
    Engine(Execution.objects.get(pk=execution.pk)).gate(prod)
    assert Execution.objects.get(pk=execution.pk).status == "approval_pending"
    return execution


def test_approver_sees_commits_and_digest_and_approves(workflow, users, asgi_server, page_as):
    from approvals.models import ApprovalRequest
    from executions.models import Release

    # prod runs release of commit "b…"; the run brings two commits on top of it.
    earlier = make_status(workflow, S.SUCCEEDED)
    prod = workflow.deploy_steps.get(environment__name="prod").environment
    Release.objects.create(
        environment=prod,
        service=workflow.service,
        workflow=workflow,
        execution=earlier,
        image="127.0.0.1:5000/demo/web:old",
        image_digest="sha256:" + "e" * 64,
        commit_sha="b" * 40,
        details={"manifest": "kind: Deployment\nimage: old\n"},
        is_current=True,  # what do_record_release marks: prod runs it now
    )
    commits = [
        {
            "sha": "c" * 40,
            "author": "Ada",
            "email": "ada@example.org",
            "date": "",
            "subject": "Fix login",
        },
        {
            "sha": "9" * 40,
            "author": "Bo",
            "email": "bo@example.org",
            "date": "",
            "subject": "Add cart",
        },
        {"sha": "b" * 40, "author": "Cy", "email": "cy@example.org", "date": "", "subject": "Old"},
    ]
    execution = reach_gate(workflow, users, commits)
    Report.objects.create(
        execution=execution,
        kind="detect-secrets",
        filename="detect-secrets.json",
        content="{}",
        summary={"counts": {"critical": 0, "high": 2, "medium": 0, "low": 0}, "total": 2},
    )

    page = page_as(users["dave"], asgi_server)
    page.goto(f"{asgi_server}/approvals/")
    page.click(f"text={execution}")
    page.wait_for_selector("[data-testid='approval-card']", timeout=10000)
    page.wait_for_selector("[data-testid='approval-commits']")
    commits_text = page.inner_text("[data-testid='approval-commits']")
    assert "Fix login" in commits_text and "Ada" in commits_text and "Add cart" in commits_text
    assert "Old" not in commits_text  # already in prod
    assert page.inner_text("[data-testid='approval-digest']") == "sha256:" + "d" * 64
    assert "0 of 1" in page.inner_text("[data-testid='approval-progress']")
    assert "high" in page.inner_text("[data-testid='approval-scans']")
    page.click("[data-testid='approval-card'] summary")  # manifest changes
    diff = page.inner_text("[data-testid='approval-diff']")
    assert (
        "-image: old" in diff
        and "sha256:" + "d" * 64 in diff
        and "***" not in diff.split("data")[0]
    )
    page.fill("[data-testid='approval-comment']", "looks good")
    page.click("[data-testid='approve']")
    page.wait_for_selector(
        "[data-testid='approval-decisions'] >> text=dave approved", timeout=10000
    )
    assert ApprovalRequest.objects.get(execution=execution).status == "approved"
    assert Execution.objects.get(pk=execution.pk).status == "running"

    # bob started the run: he sees the card, not the buttons, and why.
    other = reach_gate(workflow, users)
    page = page_as(users["bob"], asgi_server)
    open_run(page, asgi_server, other)
    page.wait_for_selector("[data-testid='approval-refusal']", timeout=10000)
    assert page.locator("[data-testid='approve']").count() == 0


def test_deploy_shows_the_approval_card_without_reload(workflow, users, asgi_server, page_as):
    from executions.engine import Engine

    execution = make_status(workflow, S.DEPLOYMENT_PENDING)
    page = page_as(users["alice"], asgi_server)
    open_run(page, asgi_server, execution)
    # The worker reaches the prod gate after the staging deploy.
    do_change_status(Execution.objects.get(pk=execution.pk), S.RUNNING)
    for stage in execution.stages.exclude(name="Deploy prod"):
        StageRun.objects.filter(pk=stage.pk).update(status="succeeded")
    Engine(Execution.objects.get(pk=execution.pk)).gate(execution.stages.get(name="Deploy prod"))
    page.wait_for_selector("[data-testid='approval-card']", timeout=10000)
    assert page.locator("[data-testid='deploy']").count() == 0


def test_reports_tab_lists_summaries_with_download(workflow, users, asgi_server, page_as):
    execution = make_status(workflow, S.FAILED)
    content = {"findings": [{"severity": "high", "type": "AWS key", "file": "app.py", "line": 3}]}
    Report.objects.create(
        execution=execution,
        kind="detect-secrets",
        filename="detect-secrets.json",
        content=json.dumps(content),
        summary={"counts": {"critical": 0, "high": 1, "medium": 0, "low": 0}, "total": 1},
    )
    page = page_as(users["carol"], asgi_server)
    open_run(page, asgi_server, execution)
    page.click("[data-testid='tab-reports']")
    report = page.wait_for_selector("[data-testid='report-detect-secrets']", timeout=10000)
    assert "1 findings" in report.inner_text()
    page.click("[data-testid='report-detect-secrets'] summary")
    page.wait_for_selector("text=AWS key — app.py:3")


def test_phone_width_log_is_full_width_and_axe_is_clean(workflow, users, asgi_server, page_as):
    execution = make_status(workflow, S.FAILED)
    write(execution, "\x1b[32mok\x1b[0m", "done")
    page = page_as(users["bob"], asgi_server)
    page.set_viewport_size({"width": 390, "height": 844})
    open_run(page, asgi_server, execution)
    page.wait_for_selector("#L2", state="attached", timeout=10000)
    width = page.evaluate("document.getElementById('log').getBoundingClientRect().width")
    assert width >= 390 - 2 * 8, width
    assert page.evaluate("document.querySelector('.wfr-graph-box').open") is False
    page.click(".wfr-graph-box summary")
    page.wait_for_selector("[data-testid='graph-Source']")

    page.set_viewport_size({"width": 1400, "height": 900})
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => (await axe.run(document.querySelector('main'))).violations")
    serious = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == [], json.dumps(serious, indent=1)


def test_a_queued_run_shows_its_place_and_why_it_waits(workflow, users, asgi_server, page_as):
    """Issue 16: a Pending run says where it is in the queue (executions.scheduler); once a
    worker takes it, the line goes with the status update."""
    older = do_create_execution(workflow, ref="main", trigger="manual", enqueue=False)
    execution = do_create_execution(workflow, ref="main", trigger="manual", enqueue=False)
    page = page_as(users["carol"], asgi_server)
    open_run(page, asgi_server, execution)
    assert page.inner_text("[data-testid='run-queue']").strip() == (
        "· Queued, position 2: 1 queued run(s) start before it, as workers free slots"
    )
    do_change_status(older, S.TERMINATED)
    claim_execution(execution.pk, "machine-a:1:abc123")  # a worker takes it
    page.wait_for_selector("[data-testid='run-queue']", state="detached", timeout=10000)
    assert page.inner_text("[data-testid='run-status']") == "Running"
