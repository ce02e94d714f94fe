#!/usr/bin/python3
"""APScheduler 3.9 with SQLAlchemyJobStore on SQLite, on the workload of sqlite_bench.cpp.

N interval jobs (every 1 s, all due at t0); each round moves a fake clock one second on and runs
the scheduler's own _process_jobs(): get_due_jobs, submit to an executor that finishes at once,
update_job for the next run time -- the store work APScheduler does per fire. Reports durable
fires per second (SQLite's default synchronous=FULL; rollback journal by default, --wal for WAL
as punctual uses). APScheduler keeps no run history, so it writes no job row per fire, unlike
punctual's benchmark.

Usage: /usr/bin/python3 tests/benchmarks/apscheduler_sqlite.py [--jobs N] [--rounds R] [--wal] [--dir D]
       [--json]
Needs python3-apscheduler (3.9) and python3-sqlalchemy.
"""
import argparse
import datetime as _dt
import json
import os
import tempfile
import time

import apscheduler
import apscheduler.schedulers.base as aps_base
from apscheduler.executors.base import BaseExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import create_engine, event

T0 = _dt.datetime(2026, 1, 1, tzinfo=_dt.timezone.utc)
fake_now = [T0]


class FakeDatetime(_dt.datetime):
    """What APScheduler's scheduler module sees as `datetime`: now() is the fake clock."""

    @classmethod
    def now(cls, tz=None):
        return fake_now[0].astimezone(tz) if tz else fake_now[0]


class InstantExecutor(BaseExecutor):
    """Runs nothing: every submitted run succeeds at once."""

    def _do_submit_job(self, job, run_times):
        self._run_job_success(job.id, [])


class ManualScheduler(BaseScheduler):
    """A scheduler without a thread: the benchmark calls _process_jobs() itself."""

    def wakeup(self):
        pass

    def shutdown(self, wait=True):
        super().shutdown(wait)


def noop():
    pass


def add_jobs(sched, jobs):
    """The benchmark's jobs: s0 .. s<jobs-1>, every second from T0, all due at T0."""
    aps_base.datetime = FakeDatetime  # what APScheduler's scheduler module reads the clock through
    trigger = IntervalTrigger(seconds=1, start_date=T0, timezone=_dt.timezone.utc)
    for k in range(jobs):
        sched.add_job(noop, trigger, id="s%d" % k, next_run_time=T0, coalesce=True, max_instances=1)


def fire_rounds(sched, jobs, rounds):
    """Runs `rounds` 1 s rounds of the fake clock through sched._process_jobs(), checks that every
    job fired in each, shuts `sched` down and returns (fires, seconds)."""
    aps_base.datetime = FakeDatetime  # _process_jobs reads the clock through this name
    fires = 0
    start = time.perf_counter()
    for r in range(rounds):
        fake_now[0] = T0 + _dt.timedelta(seconds=r)
        sched._process_jobs()
        fires += jobs
    elapsed = time.perf_counter() - start
    # Every job must have fired once per round: its next run is one second after the last round.
    expected = T0 + _dt.timedelta(seconds=rounds)
    behind = [j.id for j in sched.get_jobs() if j.next_run_time != expected]
    sched.shutdown()
    if behind:
        raise SystemExit("%d jobs did not fire every round (e.g. %s)" % (len(behind), behind[0]))
    return fires, elapsed


def make_engine(path, wal, synchronous):
    engine = create_engine("sqlite:///" + path)

    @event.listens_for(engine, "connect")
    def _pragmas(conn, _record):
        cur = conn.cursor()
        if wal:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=" + synchronous)
        cur.close()

    return engine


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--wal", action="store_true")
    ap.add_argument("--dir", default=tempfile.gettempdir())
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    args = ap.parse_args()
    path = os.path.join(args.dir, "apscheduler-bench.db")
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)

    # Setup without fsync.
    setup = ManualScheduler(timezone=_dt.timezone.utc)
    setup.add_jobstore(SQLAlchemyJobStore(engine=make_engine(path, args.wal, "OFF")))
    setup.add_executor(InstantExecutor())
    setup.start()
    add_jobs(setup, args.jobs)
    setup.shutdown()

    sched = ManualScheduler(timezone=_dt.timezone.utc)
    sched.add_jobstore(SQLAlchemyJobStore(engine=make_engine(path, args.wal, "FULL")))
    sched.add_executor(InstantExecutor())
    sched.start()
    fires, elapsed = fire_rounds(sched, args.jobs, args.rounds)
    mode = "WAL" if args.wal else "rollback journal"
    if args.json:
        print(json.dumps({"peer": "APScheduler %s SQLAlchemyJobStore" % apscheduler.__version__,
                          "journal": mode, "schedules": args.jobs, "rounds": args.rounds,
                          "fires": fires, "seconds": round(elapsed, 4),
                          "fires_per_second": round(fires / elapsed, 1)}), flush=True)
        return
    print("APScheduler %s + SQLAlchemyJobStore (SQLite, %s, synchronous=FULL): %d jobs x %d rounds: "
          "%.0f fires/s (%d fires in %.2f s)" % (apscheduler.__version__, mode, args.jobs, args.rounds,
                                                  fires / elapsed, fires, elapsed))


if __name__ == "__main__":
    main()
