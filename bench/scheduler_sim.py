"""The scheduler's policy at scale: a discrete-event simulation of 10,000 jobs from 50
organizations on a 64-accelerator cluster, no training, driving the same `fair_share.choose`
the scheduler calls, side by side with plain FIFO and FIFO with first-fit backfill.

    .venv/bin/python bench/scheduler_sim.py [--jobs 10000] [--orgs 50] [--capacity 64] [--seed 1]

Workload (docs/scheduling.md): organizations' job counts are Zipf-skewed (a few heavy, many
light); a job asks for 1/2/4/8 accelerators (50/25/15/10 %); durations are Pareto (alpha 1.5,
at least 10 min, cut at 24 h); Poisson arrivals offer 1.2x the cluster's capacity, so the
queue never empties until the arrivals stop. Fair share is the fluid max-min reference
computed by `fluid_fair_finish` below; an organization's wait is compared with the wait it would
have there.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from polytune.fair_share import PER_ORG_WINDOW, Candidate, choose

DEMANDS, DEMAND_P = (1, 2, 4, 8), (0.50, 0.25, 0.15, 0.10)
ZIPF_S, PARETO_ALPHA, MIN_MINUTES, MAX_MINUTES, LOAD = 1.2, 1.5, 10.0, 24 * 60.0, 1.2
GROUPS = (("heavy (top 5)", 0, 5), ("medium (6-20)", 5, 20), ("light (21-50)", 20, 10**9))


@dataclass
class Job:
    seq: int
    org: str
    demand: int
    duration: float  # seconds
    arrival: float


def workload(n_jobs: int, n_orgs: int, capacity: int, seed: int) -> list[Job]:
    rng = random.Random(seed)
    weights = [1 / (k + 1) ** ZIPF_S for k in range(n_orgs)]
    orgs = rng.choices(range(n_orgs), weights, k=n_jobs)
    demands = rng.choices(DEMANDS, DEMAND_P, k=n_jobs)
    minutes = [min(MIN_MINUTES / (1 - rng.random()) ** (1 / PARETO_ALPHA), MAX_MINUTES) for _ in range(n_jobs)]
    work = sum(d * m * 60 for d, m in zip(demands, minutes))
    rate = LOAD * capacity * n_jobs / work  # arrivals per second offering LOAD x capacity
    t, jobs = 0.0, []
    for i in range(n_jobs):
        t += rng.expovariate(rate)
        jobs.append(Job(i, f"org-{orgs[i]:02d}", demands[i], minutes[i] * 60, t))
    return jobs


# -- the reference: fluid max-min fair share -------------------------------------------------
def water_fill(claims: dict[str, float], capacity: float) -> dict[str, float]:
    """Max-min fair split of `capacity`: no organization gets more than it claims, and what one
    doesn't claim is shared equally by the others."""
    shares, left = {}, float(capacity)
    items = sorted(claims.items(), key=lambda kv: kv[1])
    for i, (org, claim) in enumerate(items):
        shares[org] = min(claim, left / (len(items) - i))
        left -= shares[org]
    return shares


def fluid_fair_finish(jobs: list[Job], capacity: int) -> list[float]:
    """When each job would finish if, at every instant, each organization with unfinished work
    were served at its max-min fair share of the cluster (its claim: the accelerators its
    unfinished jobs ask for), its own jobs in arrival order, and no job faster than alone."""
    pending: dict[str, deque] = {}
    claims: dict[str, float] = {}
    finish = [0.0] * len(jobs)
    t, i = 0.0, 0
    while i < len(jobs) or pending:
        shares = water_fill(claims, capacity) if pending else {}
        dt = jobs[i].arrival - t if i < len(jobs) else math.inf
        for org, q in pending.items():
            dt = min(dt, q[0][1] / shares[org])
        t += dt
        for org in list(pending):
            q = pending[org]
            q[0][1] -= shares[org] * dt
            if q[0][1] <= 1e-6 * jobs[q[0][0]].demand * jobs[q[0][0]].duration:
                j = jobs[q.popleft()[0]]
                finish[j.seq] = max(t, j.arrival + j.duration)
                claims[org] -= j.demand
                if not q:
                    del pending[org], claims[org]
        while i < len(jobs) and jobs[i].arrival <= t:
            j = jobs[i]
            pending.setdefault(j.org, deque()).append([i, j.demand * j.duration])
            claims[j.org] = claims.get(j.org, 0) + j.demand
            i += 1
    return finish


# -- the baselines -----------------------------------------------------------------------------
def fifo(candidates, *, free, **_):
    """Plain first-come first-served: the oldest job, when it fits."""
    oldest = min(candidates, key=lambda c: c.seq, default=None)
    return oldest if oldest is not None and oldest.demand <= free else None


def first_fit(candidates, *, free, **_):
    """FIFO with greedy backfill: the oldest job that fits."""
    return min((c for c in candidates if c.demand <= free), key=lambda c: c.seq, default=None)


# -- the simulation ----------------------------------------------------------------------------
def simulate(jobs: list[Job], capacity: int, policy) -> dict:
    """Arrivals and completions in time order; after each instant's events, ask the policy for a
    job while accelerators are free, as Scheduler._dispatch does. Each decision sees each
    organization's PER_ORG_WINDOW oldest queued jobs, as Scheduler._claim does."""
    events = [(j.arrival, 1, j.seq) for j in jobs]  # completions (kind 0) sort before arrivals
    heapq.heapify(events)
    queues: dict[str, list[Candidate]] = {}
    usage: dict[str, int] = {}
    active: dict[str, int] = {}
    start = [0.0] * len(jobs)
    free, waiting = capacity, 0
    busy_while_waiting = time_waiting = 0.0
    decisions, decision_s = 0, 0.0
    last = 0.0
    while events:
        now = events[0][0]
        if waiting:
            time_waiting += now - last
            busy_while_waiting += (capacity - free) * (now - last)
        last = now
        while events and events[0][0] == now:
            _, kind, seq = heapq.heappop(events)
            j = jobs[seq]
            if kind == 0:
                free += j.demand
                usage[j.org] -= j.demand
                active[j.org] -= 1
            else:
                queues.setdefault(j.org, []).append(Candidate(str(seq), j.org, seq, j.demand, j.arrival))
                waiting += 1
        while free > 0 and waiting:
            candidates = [c for q in queues.values() for c in q[:PER_ORG_WINDOW]]
            t0 = time.perf_counter()
            pick = policy(candidates, free=free, capacity=capacity, usage=usage, active=active, now=now)
            decision_s += time.perf_counter() - t0
            decisions += 1
            if pick is None:
                break
            queues[pick.org].remove(pick)
            if not queues[pick.org]:
                del queues[pick.org]
            waiting -= 1
            free -= pick.demand
            usage[pick.org] = usage.get(pick.org, 0) + pick.demand
            active[pick.org] = active.get(pick.org, 0) + 1
            start[pick.seq] = now
            heapq.heappush(events, (now + jobs[pick.seq].duration, 0, pick.seq))
    return {
        "start": start,
        "util": busy_while_waiting / (capacity * time_waiting),
        "makespan": last,
        "decisions": decisions,
        "us_per_decision": decision_s / decisions * 1e6,
    }


def report(jobs: list[Job], fair_finish: list[float], runs: dict[str, dict]) -> list[tuple]:
    org_rank = {o: r for r, (o, _) in enumerate(sorted(_count(j.org for j in jobs).items(), key=lambda kv: -kv[1]))}
    by_org = {o: np.array([j.seq for j in jobs if j.org == o]) for o in org_rank}
    duration = np.array([j.duration for j in jobs]) / 60
    fair_wait = np.array([fair_finish[j.seq] - j.arrival for j in jobs]) / 60 - duration
    waits = {name: np.array([r["start"][j.seq] - j.arrival for j in jobs]) / 60 for name, r in runs.items()}
    rows = [
        ("utilization while jobs wait", *(f"{r['util']:.1%}" for r in runs.values())),
        ("makespan (h)", *(f"{r['makespan'] / 3600:.1f}" for r in runs.values())),
    ]
    for label, lo, hi in GROUPS:
        mask = np.array([lo <= org_rank[j.org] < hi for j in jobs])
        for q in (50, 95, 99):
            rows.append((f"wait p{q} (min), {label}", *(f"{np.percentile(w[mask], q):,.0f}" for w in waits.values())))
    # By size outside the heaviest organizations, whose own backlog would hide the difference.
    not_heavy = np.array([org_rank[j.org] >= GROUPS[0][2] for j in jobs])
    for d in DEMANDS:
        mask = not_heavy & np.array([j.demand == d for j in jobs])
        rows.append(
            (
                f"wait p99 (min), {d}-accel jobs, orgs 6-50",
                *(f"{np.percentile(w[mask], 99):,.0f}" for w in waits.values()),
            )
        )
    worst, over, excess = [], [], []
    for w in waits.values():
        # Time to result (wait + run), the organization's mean, against the fair share's.
        ratio = {o: (w[i] + duration[i]).mean() / (fair_wait[i] + duration[i]).mean() for o, i in by_org.items()}
        org = max(ratio, key=ratio.get)
        worst.append(f"{ratio[org]:.2f} (rank {org_rank[org] + 1})")
        over.append(str(sum(r > 2 for r in ratio.values())))
        extra = {o: w[i].mean() - fair_wait[i].mean() for o, i in by_org.items()}
        org = max(extra, key=extra.get)
        excess.append(f"{extra[org]:,.0f} (rank {org_rank[org] + 1})")
    rows.append(("worst org: time to result / fair share's", *worst))
    rows.append(("orgs over 2x their fair share's", *over))
    rows.append(("worst org: mean wait - fair share's (min)", *excess))
    rows.append(("decisions", *(f"{r['decisions']:,}" for r in runs.values())))
    rows.append(("policy cost per decision (µs)", *(f"{r['us_per_decision']:.0f}" for r in runs.values())))
    return rows


# -- the same decision through the database ---------------------------------------------------
class _Cluster:
    """Executor stand-in for Scheduler._claim: `capacity` accelerators, n_accel x n_node a job."""

    def __init__(self, capacity: int):
        self._capacity = capacity

    def capacity(self) -> int:
        return self._capacity

    def demand(self, resources) -> int:
        return resources.n_accel * resources.n_node


def claim_cost(jobs: list[Job], url: str, claims: int = 200) -> float:
    """Median ms of Scheduler._claim (usage query, per-organization window, policy, transition)
    with every job of the workload queued in a real database."""
    from polytune.domain.spec import JobSpec, Resources
    from polytune.scheduler import Scheduler
    from polytune.store import tables as t
    from polytune.store.db import Database

    db = Database(url)
    db.migrate()
    with db.session() as s:
        s.add_all(t.Organization(id=o, name=o, created_at=0) for o in {j.org for j in jobs})
    with db.session() as s:
        for j in jobs:
            spec = JobSpec(model="polytune-tiny", training_files=["file-x"], resources=Resources(n_accel=j.demand))
            s.add(
                t.Job(
                    id=f"ftjob-{j.seq}",
                    org_id=j.org,
                    status="queued",
                    spec=spec.model_dump(mode="json"),
                    created_at=int(j.arrival),
                    result_files=[],
                    trained_steps=0,
                    attempts=0,
                )
            )
    sch = Scheduler(db, None, _Cluster(10**9), slots=1)
    times = []
    for _ in range(claims):
        t0 = time.perf_counter()
        assert sch._claim() is not None
        times.append(time.perf_counter() - t0)
    db.dispose()
    return float(np.median(times) * 1e3)


def _in_scratch_schema(pg_url: str, measure):
    """Run `measure(url)` in a new PostgreSQL schema, dropped afterwards, so the database's own
    tables are never touched."""
    import uuid

    import sqlalchemy as sa

    schema = f"polytune_sim_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in pg_url else "?"
        return measure(f"{pg_url}{sep}options=-csearch_path%3D{schema}")
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _count(items) -> dict:
    out: dict = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--orgs", type=int, default=50)
    parser.add_argument("--capacity", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--database-url",
        help="time Scheduler._claim on this PostgreSQL, in a scratch schema (default: a temporary SQLite)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="1,000 jobs, 16 accelerators, 5 timed claims: the smallest run through every part "
        "(for the tests; fewer organizations leave the report's groups empty)",
    )
    args = parser.parse_args()
    if args.smoke:
        args.jobs, args.capacity = 1000, 16
    claims = 5 if args.smoke else 200
    t0 = time.monotonic()
    jobs = workload(args.jobs, args.orgs, args.capacity, args.seed)
    fair_finish = fluid_fair_finish(jobs, args.capacity)
    policies = {
        "fair_share.choose": choose,
        "same, no reservation": partial(choose, reserve_after=math.inf),
        "FIFO": fifo,
        "FIFO + first-fit": first_fit,
    }
    runs = {name: simulate(jobs, args.capacity, p) for name, p in policies.items()}
    rows = report(jobs, fair_finish, runs)
    print(
        f"{args.jobs:,} jobs, {len({j.org for j in jobs})} organizations, {args.capacity} accelerators, "
        f"offered load {LOAD}x, arrivals over {jobs[-1].arrival / 3600:.0f} h, seed {args.seed}"
    )
    header = ("measure", *policies)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    for line in (header, *rows):
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(line, widths))))
    with tempfile.TemporaryDirectory() as tmp:
        if args.database_url:
            ms = _in_scratch_schema(args.database_url, lambda url: claim_cost(jobs, url, claims))
        else:
            ms = claim_cost(jobs, f"sqlite:///{tmp}/sim.db", claims)
    kind = (args.database_url or "sqlite").split(":")[0]
    print(f"Scheduler._claim with all {len(jobs):,} jobs queued ({kind}): {ms:.1f} ms per claim (median of {claims})")
    print(f"({time.monotonic() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
