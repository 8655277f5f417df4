"""Which queued run starts next: fair between projects, within each project's limit.

A run is queued while it is Pending, or Running with no worker holding it (resumed after a
gate). Every worker process picks from the same queue in the database, so runs spread over
however many worker processes and machines there are.

The order is GitLab's fair usage queue for shared runners: the project with the fewest runs
held by workers goes first, then the oldest run. A project that pushed 200 services at once gets
its first run started like any other, and a project with a single push waits for at most one
free slot, never for the other project's whole burst. On top of that no project holds more than
PROJECT_MAX_CONCURRENT_RUNS runs at once, across all workers (GitHub Actions and Buildkite keep a
similar per-organisation or per-pipeline cap), so one project cannot take every slot.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict, deque
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q

from executions.models import Execution
from executions.services import claim_execution
from executions.status import ExecutionStatus
from workflows.models import Project

S = ExecutionStatus
# Statuses of runs a worker holds: they take a slot of their project.
HELD = (S.RUNNING, S.TERMINATING)
PROJECT = "workflow__service__project_id"


@dataclass(frozen=True)
class Queued:
    """A queued run's place: `position` 1 starts next; `reason` says why it waits."""

    execution_id: int
    project_id: int
    position: int
    reason: str


def queued_filter() -> Q:
    return Q(status=S.PENDING) | Q(status=S.RUNNING, worker_id="")


def project_limit() -> int:
    return settings.PROJECT_MAX_CONCURRENT_RUNS


def held_per_project() -> Counter:
    """Runs each project has held by a worker now."""
    rows = (
        Execution.objects.filter(status__in=HELD)
        .exclude(worker_id="")
        .values(PROJECT)
        .annotate(n=Count("id"))
    )
    return Counter({row[PROJECT]: row["n"] for row in rows})


def fair_order(queued: list[tuple[int, int]], held: Counter) -> list[tuple[int, int]]:
    """`queued` as (execution id, project id), oldest first, put in the order workers start
    them: each next run comes from the project with the fewest runs held (counting those
    started before it in this order), ties going to the project whose next run is oldest."""
    per_project: dict[int, deque[tuple[int, int]]] = defaultdict(deque)
    for index, (execution_id, project_id) in enumerate(queued):
        per_project[project_id].append((index, execution_id))
    counts = Counter(held)
    heap = [(counts[p], runs[0][0], p) for p, runs in per_project.items()]
    heapq.heapify(heap)
    order: list[tuple[int, int]] = []
    while heap:
        _, _, project_id = heapq.heappop(heap)
        runs = per_project[project_id]
        _, execution_id = runs.popleft()
        order.append((execution_id, project_id))
        counts[project_id] += 1
        if runs:
            heapq.heappush(heap, (counts[project_id], runs[0][0], project_id))
    return order


def queue() -> list[Queued]:
    """Every queued run in the order workers will start them, with why each waits. One query
    for the queue and one for the counts, whatever its length."""
    queued = list(
        Execution.objects.filter(queued_filter())
        .order_by("created_at", "id")
        .values_list("id", PROJECT)
    )
    held = held_per_project()
    limit = project_limit()
    places = []
    for position, (execution_id, project_id) in enumerate(fair_order(queued, held), start=1):
        if held[project_id] >= limit:
            reason = (
                f"its project has {held[project_id]} runs running, "
                f"the most it may run at once ({limit})"
            )
        elif position == 1:
            reason = "next to start, when a worker has a free slot"
        else:
            reason = f"{position - 1} queued run(s) start before it, as workers free slots"
        places.append(Queued(execution_id, project_id, position, reason))
    return places


def claim_run(execution_id: int, worker_id: str, project_id: int) -> Execution | None:
    """Takes a queued run for `worker_id` while its project holds fewer runs than its limit:
    the project's row is locked first (PostgreSQL; SQLite runs one writing transaction at a
    time) so two workers on two machines cannot both take its last slot, then the run is taken
    with the lifecycle's one conditional UPDATE (`services.claim_execution`). None: another
    worker took it, it is no longer queued, or its project is at its limit."""
    with transaction.atomic():
        list(Project.objects.select_for_update().filter(pk=project_id).values("pk"))
        held = (
            Execution.objects.filter(status__in=HELD, **{PROJECT: project_id})
            .exclude(worker_id="")
            .count()
        )
        if held >= project_limit():
            return None
        return claim_execution(execution_id, worker_id)


def claim_next(worker_id: str, slots: int) -> list[Execution]:
    """Takes up to `slots` queued runs for `worker_id`, in the fair order, skipping projects at
    their limit. Returns the runs taken (possibly none)."""
    taken: list[Execution] = []
    places = queue()
    full: set[int] = set()
    for place in places:
        if len(taken) >= slots:
            break
        if place.project_id in full:
            continue
        execution = claim_run(place.execution_id, worker_id, place.project_id)
        if execution is not None:
            taken.append(execution)
        elif Execution.objects.filter(pk=place.execution_id).filter(queued_filter()).exists():
            full.add(place.project_id)  # still queued: its project is at its limit
    return taken


def is_queued(execution: Execution) -> bool:
    return execution.status == S.PENDING or (
        execution.status == S.RUNNING and not execution.worker_id
    )


def places(cache: dict | None = None) -> dict[int, Queued]:
    """The queue by execution id, computed once per `cache` (a request's serializer context)."""
    if cache is not None and "queue" in cache:
        return cache["queue"]
    found = {place.execution_id: place for place in queue()}
    if cache is not None:
        cache["queue"] = found
    return found


def place_of(execution: Execution, cache: dict | None = None) -> Queued | None:
    """Where a queued run is in the queue and why it waits; None for a run not queued."""
    if not is_queued(execution):
        return None
    return places(cache).get(execution.pk)
