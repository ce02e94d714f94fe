#!/usr/bin/python3
"""Cron parse and next() timing of the peers packaged in Debian 12 (python3-croniter,
python3-apscheduler's CronTrigger), on the workload of trigger_bench.cpp: the same expressions,
and next() from the same 1024 pseudo-random instants over 2020-2030 (the same xorshift sequence),
in UTC and in Europe/Berlin. Prints one JSON line per figure:

  {"peer": ..., "op": "parse"|"next", "expr": ..., "zone": ..., "ns": ..., "as": ...}

"as" is the peer's spelling of the expression when it differs; "ns" is null when the peer
cannot express the schedule. Each figure is the best of 3 timed loops of at least MIN_TIME
seconds each (default 0.2; argument 1). Run with /usr/bin/python3.

Favourable to the peers: next() returns croniter's float timestamps (not datetimes), and the
instants are converted to the zone's datetimes before timing.
"""
import datetime as _dt
import importlib.metadata
import json
import sys
import time
import zoneinfo

import apscheduler
import pytz
from apscheduler.triggers.cron import CronTrigger
from croniter import croniter

COMMON = ["*/5 * * * *", "0 9 * * MON-FRI", "0 0 1 * *", "30 2 * * *"]
SPECIAL = ["0 0 L * *", "0 0 LW * *", "0 0 15W * *", "0 0 * * 5L", "0 0 * * MON#2"]
ZONES = ["UTC", "Europe/Berlin"]

# croniter's spelling (None: it has no way to say it).
CRONITER = {"0 0 LW * *": None, "0 0 15W * *": None, "0 0 * * 5L": "0 0 * * L5"}
# APScheduler CronTrigger keyword arguments for what from_crontab() cannot read.
APSCHEDULER = {
    "0 0 L * *": {"minute": "0", "hour": "0", "day": "last"},
    "0 0 LW * *": None,
    "0 0 15W * *": None,
    "0 0 * * 5L": {"minute": "0", "hour": "0", "day": "last fri"},
    "0 0 * * MON#2": {"minute": "0", "hour": "0", "day": "2nd mon"},
}


def instants():
    """trigger_bench.cpp's bench_instants(): 1024 instants in [2020, 2030), microseconds."""
    begin = 1_577_836_800 * 1_000_000
    span = 315_532_800 * 1_000_000
    mask = (1 << 64) - 1
    x = 0x9E3779B97F4A7C15
    out = []
    for _ in range(1024):
        x ^= (x << 13) & mask
        x ^= x >> 7
        x ^= (x << 17) & mask
        us = begin + x % span
        out.append(_dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc) + _dt.timedelta(microseconds=us))
    return out


def best_ns(body, min_time):
    """Nanoseconds per call of body(k) (which makes k calls): the best of 3 loops."""
    k = 16
    while True:
        t = time.perf_counter()
        body(k)
        if time.perf_counter() - t >= min_time / 4:
            break
        k *= 4
    best = None
    for _ in range(3):
        t = time.perf_counter()
        body(k)
        per = (time.perf_counter() - t) / k * 1e9
        best = per if best is None else min(best, per)
        if time.perf_counter() - t < min_time:
            k = int(k * min_time / max(time.perf_counter() - t, 1e-6)) + 1
    return round(best, 1)


def emit(peer, op, expr, zone, ns, spelled):
    line = {"peer": peer, "op": op, "expr": expr, "zone": zone, "ns": ns}
    if spelled is not None and spelled != expr:
        line["as"] = spelled
    print(json.dumps(line), flush=True)


def croniter_figures(min_time, points):
    peer = "croniter " + importlib.metadata.version("croniter")
    start = points[0].timestamp()
    for expr in COMMON + SPECIAL:
        spelled = CRONITER.get(expr, expr)
        if spelled is None:
            emit(peer, "parse", expr, "UTC", None, None)
            for zone in ZONES:
                emit(peer, "next", expr, zone, None, None)
            continue

        def parse(k, e=spelled):
            for _ in range(k):
                croniter(e, start)

        emit(peer, "parse", expr, "UTC", best_ns(parse, min_time), spelled)
        for zone in ZONES:
            tz = zoneinfo.ZoneInfo(zone)
            local = [p.astimezone(tz) for p in points]
            it = croniter(spelled, local[0])

            def nxt(k, it=it, local=local):
                for i in range(k):
                    it.set_current(local[i & 1023])
                    it.get_next(float)

            emit(peer, "next", expr, zone, best_ns(nxt, min_time), spelled)


def apscheduler_trigger(expr, tz):
    kwargs = APSCHEDULER.get(expr, "crontab")
    if kwargs is None:
        return None
    if kwargs == "crontab":
        return CronTrigger.from_crontab(expr, timezone=tz)
    return CronTrigger(timezone=tz, **kwargs)


def apscheduler_figures(min_time, points):
    peer = "APScheduler " + apscheduler.__version__ + " CronTrigger"
    for expr in COMMON + SPECIAL:
        kwargs = APSCHEDULER.get(expr, "crontab")
        spelled = None
        if kwargs == "crontab":
            spelled = expr
        elif kwargs is not None:
            spelled = " ".join("%s=%s" % kv for kv in kwargs.items())
        if kwargs is None:
            emit(peer, "parse", expr, "UTC", None, None)
            for zone in ZONES:
                emit(peer, "next", expr, zone, None, None)
            continue
        utc = pytz.utc

        def parse(k, e=expr):
            for _ in range(k):
                apscheduler_trigger(e, utc)

        emit(peer, "parse", expr, "UTC", best_ns(parse, min_time), spelled)
        for zone in ZONES:
            tz = pytz.timezone(zone)
            trig = apscheduler_trigger(expr, tz)
            local = [p.astimezone(tz) for p in points]

            def nxt(k, trig=trig, local=local):
                for i in range(k):
                    trig.get_next_fire_time(None, local[i & 1023])

            emit(peer, "next", expr, zone, best_ns(nxt, min_time), spelled)


def main():
    min_time = float(sys.argv[1]) if len(sys.argv) > 1 else 0.2
    points = instants()
    croniter_figures(min_time, points)
    apscheduler_figures(min_time, points)


if __name__ == "__main__":
    main()
