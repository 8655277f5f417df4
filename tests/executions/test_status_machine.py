"""Every pair of statuses: allowed moves succeed (and are recorded), all others are refused."""

from __future__ import annotations

import itertools

import pytest

from executions.models import Execution, StatusChange
from executions.services import IllegalTransition, do_change_status
from executions.status import TERMINAL, TRANSITIONS, ExecutionStatus

ALL = list(ExecutionStatus)
PAIRS = list(itertools.product(ALL, ALL))


def test_terminal_states_have_no_exit():
    for status in TERMINAL:
        assert TRANSITIONS[status] == frozenset()
    assert set(TRANSITIONS) == set(ALL)
    assert len(ALL) == 11


@pytest.mark.parametrize(("current", "new"), PAIRS, ids=[f"{a.value}->{b.value}" for a, b in PAIRS])
def test_transition(workflow, current, new):
    execution = Execution.objects.create(workflow=workflow, number=1, status=current)
    if new in TRANSITIONS[current]:
        do_change_status(execution, new, "because")
        execution.refresh_from_db()
        assert execution.status == new
        assert execution.status_changed_at is not None
        change = StatusChange.objects.get(execution=execution)
        assert (change.from_status, change.to_status, change.reason) == (current, new, "because")
        if new in TERMINAL:
            assert execution.finished_at is not None
    else:
        with pytest.raises(IllegalTransition):
            do_change_status(execution, new)
        execution.refresh_from_db()
        assert execution.status == current
        assert not StatusChange.objects.filter(execution=execution).exists()


def test_stale_object_cannot_make_a_second_move(workflow):
    """Two processes holding the same Pending row: only the first move counts."""
    execution = Execution.objects.create(workflow=workflow, number=1)
    stale = Execution.objects.get(pk=execution.pk)
    do_change_status(execution, ExecutionStatus.RUNNING)
    do_change_status(execution, ExecutionStatus.SUCCEEDED)
    with pytest.raises(IllegalTransition):
        do_change_status(stale, ExecutionStatus.RUNNING)
    assert Execution.objects.get(pk=execution.pk).status == ExecutionStatus.SUCCEEDED
