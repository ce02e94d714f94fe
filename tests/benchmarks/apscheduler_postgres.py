#!/usr/bin/python3
"""APScheduler 3.9 with SQLAlchemyJobStore on PostgreSQL, on the workload of postgres_bench.cpp
(fires part): the run of apscheduler_sqlite.py, against a PostgreSQL server.

N interval jobs (every 1 s, all due at t0); each round moves a fake clock one second on and runs
the scheduler's own _process_jobs(): get_due_jobs, submit to an executor that finishes at once,
update_job for the next run time -- the store work APScheduler does per fire, each update its
own durable commit (the server's synchronous_commit). APScheduler keeps no run history, so it
writes no job row per fire, unlike punctual's benchmark. The job table lives in its own schema
(aps_bench_<pid>), dropped at the end.

Usage: /usr/bin/python3 tests/benchmarks/apscheduler_postgres.py URL [--jobs N] [--rounds R] [--json]
Needs python3-apscheduler (3.9), python3-sqlalchemy and python3-psycopg2.
"""
import argparse
import datetime as _dt
import json
import os
import sys

import apscheduler
import psycopg2
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from sqlalchemy import create_engine

sys.dont_write_bytecode = True  # no __pycache__ in the source tree for the import below
from apscheduler_sqlite import InstantExecutor, ManualScheduler, add_jobs, fire_rounds  # noqa: E402


def sqlalchemy_url(url):
    # SQLAlchemy 1.4 accepts only the postgresql:// spelling (psycopg2 is its default driver).
    return "postgresql://" + url[len("postgres://"):] if url.startswith("postgres://") else url


def admin(url, sql):
    """Runs `sql` on its own connection; returns its first row, if any."""
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SET client_min_messages = warning")
        cur.execute(sql)
        row = cur.fetchone() if cur.description else None
    conn.close()
    return row


def make_scheduler(url, schema):
    sched = ManualScheduler(timezone=_dt.timezone.utc)
    sched.add_jobstore(SQLAlchemyJobStore(engine=create_engine(sqlalchemy_url(url)), tableschema=schema))
    sched.add_executor(InstantExecutor())
    sched.start()
    return sched


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url", nargs="?", default=os.environ.get("PUNCTUAL_TEST_POSTGRES_URL", ""))
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    args = ap.parse_args()
    if not args.url:
        raise SystemExit("give a PostgreSQL URL or set PUNCTUAL_TEST_POSTGRES_URL")
    schema = "aps_bench_%d" % os.getpid()
    admin(args.url, "CREATE SCHEMA %s" % schema)
    try:
        setup = make_scheduler(args.url, schema)
        add_jobs(setup, args.jobs)
        setup.shutdown()
        fires, elapsed = fire_rounds(make_scheduler(args.url, schema), args.jobs, args.rounds)
    finally:
        admin(args.url, "DROP SCHEMA IF EXISTS %s CASCADE" % schema)
    if args.json:
        print(json.dumps({"peer": "APScheduler %s SQLAlchemyJobStore" % apscheduler.__version__,
                          "fsync": admin(args.url, "SHOW fsync")[0], "schedules": args.jobs, "rounds": args.rounds, "fires": fires,
                          "seconds": round(elapsed, 4), "fires_per_second": round(fires / elapsed, 1)}),
              flush=True)
        return
    print("APScheduler %s + SQLAlchemyJobStore (PostgreSQL): %d jobs x %d rounds: %.0f fires/s "
          "(%d fires in %.2f s)" % (apscheduler.__version__, args.jobs, args.rounds, fires / elapsed, fires,
                                    elapsed))


if __name__ == "__main__":
    main()
