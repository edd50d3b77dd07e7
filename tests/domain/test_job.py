"""The lifecycle table: what may follow what."""

from __future__ import annotations

import pytest

from polytune.domain.job import ALLOWED, IllegalTransition, JobStatus, check_transition

S = JobStatus


@pytest.mark.parametrize("current,target", [(c, t) for c in S for t in S])
def test_every_pair_follows_the_table(current, target):
    if target in ALLOWED[current]:
        check_transition(current, target)
    else:
        with pytest.raises(IllegalTransition):
            check_transition(current, target)


def test_terminal_states_lead_nowhere_and_say_so():
    for st in (S.SUCCEEDED, S.FAILED, S.CANCELLED):
        assert ALLOWED[st] == frozenset()
        with pytest.raises(IllegalTransition, match=f"already {st.value}"):
            check_transition(st, S.RUNNING)


def test_the_spine_path():
    path = [S.VALIDATING_FILES, S.QUEUED, S.RUNNING, S.SUCCEEDED]
    for a, b in zip(path, path[1:]):
        check_transition(a, b)
    for st in (S.VALIDATING_FILES, S.QUEUED, S.RUNNING):
        check_transition(st, S.CANCELLED)


def test_created_waits_for_an_explicit_start():
    # Nothing but a start (-> validating_files) or a cancel moves a created job.
    assert ALLOWED[S.CREATED] == frozenset({S.VALIDATING_FILES, S.CANCELLED})
    for st in (S.QUEUED, S.RUNNING, S.SUCCEEDED, S.FAILED):
        with pytest.raises(IllegalTransition, match="created can't become"):
            check_transition(S.CREATED, st)
    assert not any(S.CREATED in targets for targets in ALLOWED.values())
