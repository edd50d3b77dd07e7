"""Which queued job starts next: fair across organizations in accelerators, with backfill that
can't starve a multi-accelerator job. A pure function of what the store holds, so schedulers in
several processes on one database agree, and bench/scheduler_sim.py drives the same code.

The rule, in one pass over the candidates in fair order (organizations by the accelerators they
use now, fewest first; ties to the one with the oldest job; oldest first within one):
- the first job that fits in the free accelerators starts;
- a job that doesn't fit is skipped (smaller jobs behind it backfill the free capacity) while it
  is young; once it has waited `reserve_after` seconds it holds a reservation: nothing behind it
  in fair order starts, so finishing jobs free capacity for it until it fits.
docs/scheduling.md has the reasoning and the simulation's numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Long enough that a big job's first minutes of waiting are backfilled (capacity busy), short
# next to a training job's length, so the capacity it then holds idle is a small price.
RESERVE_AFTER = 300.0
# How many of each organization's oldest queued jobs a decision looks at: enough for an
# organization's small jobs to backfill behind its own big one, few enough that a decision's
# cost grows with the organizations queued, not with the length of the queue.
PER_ORG_WINDOW = 8


@dataclass(frozen=True, slots=True)
class Candidate:
    id: str
    org: str
    seq: int  # queue order (the job row's seq)
    demand: int  # accelerators it takes (executor.demand)
    queued_at: float  # seconds, same clock as `now`


def fair_order(candidates: Iterable[Candidate], usage: Mapping[str, int]) -> list[Candidate]:
    """Candidates by organization usage (fewest accelerators first), then oldest job."""
    by_org: dict[str, list[Candidate]] = {}
    for c in candidates:
        by_org.setdefault(c.org, []).append(c)
    groups = []
    for jobs in by_org.values():
        jobs.sort(key=lambda c: c.seq)
        groups.append(jobs)
    groups.sort(key=lambda jobs: (usage.get(jobs[0].org, 0), jobs[0].seq))
    return [c for jobs in groups for c in jobs]


def choose(
    candidates: Iterable[Candidate],
    *,
    free: int,
    capacity: int,
    usage: Mapping[str, int],
    active: Mapping[str, int],
    now: float,
    max_jobs_per_org: int = 0,
    reserve_after: float = RESERVE_AFTER,
) -> Candidate | None:
    """The job to start in `free` accelerators, or None (nothing fits, or capacity is being held
    for a job that has waited long enough).

    usage: accelerators each organization's active jobs hold; active: its active job count (for
    `max_jobs_per_org`, 0 = no limit); capacity: all the executor has (a job asking for more can
    never run and is passed over rather than blocking the queue).
    """
    if free <= 0:
        return None
    eligible = (
        c
        for c in candidates
        if c.demand <= capacity and not (max_jobs_per_org and active.get(c.org, 0) >= max_jobs_per_org)
    )
    for c in fair_order(eligible, usage):
        if c.demand <= free:
            return c
        if now - c.queued_at >= reserve_after:
            return None  # reserved: the capacity that frees is kept for it
    return None


def starts_now(
    job: Candidate,
    queued: Iterable[Candidate],
    *,
    free: int,
    capacity: int,
    usage: Mapping[str, int],
    active: Mapping[str, int],
    now: float,
    max_jobs_per_org: int = 0,
    reserve_after: float = RESERVE_AFTER,
) -> bool:
    """Whether `job`, added to the queue now, would start before the free accelerators run out:
    the jobs `choose` picks ahead of it take theirs first, as the scheduler's passes would. For a
    job that cannot wait in the queue (a Tinker run, whose client waits on its call): refused
    when False, so it never jumps ahead of jobs the fair order puts first."""
    pending = [*queued, job]
    usage, active = dict(usage), dict(active)
    while (
        pick := choose(
            pending,
            free=free,
            capacity=capacity,
            usage=usage,
            active=active,
            now=now,
            max_jobs_per_org=max_jobs_per_org,
            reserve_after=reserve_after,
        )
    ) is not None:
        if pick.id == job.id:
            return True
        pending.remove(pick)
        free -= pick.demand
        usage[pick.org] = usage.get(pick.org, 0) + pick.demand
        active[pick.org] = active.get(pick.org, 0) + 1
    return False
