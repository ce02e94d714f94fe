#!/usr/bin/python3
"""Assembles benchmark-report.md and the PNG plots from the raw results of tests/benchmarks/run
(one JSON line per figure in RESULTS, Google Benchmark JSON for the trigger benchmarks).

  report.py --results DIR --build DIR --repo DIR --mode quick|full [--seconds S] [--build-seconds S]
  report.py --outage-table FILE      only the PostgreSQL outage table of FILE's JSON lines
                                     (for tests/benchmarks/pg_outage_compare)

Standard library only; plots through gnuplot when it is installed. Every ratio is punctual's
time over the peer's time for the same work in the same run: below 1 punctual is faster.
"""
import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys

# Targets the project set itself (README, "Measured").
CRON_NEXT_COMMON_NS = 100
CRON_NEXT_SPECIAL_NS = 300
CRON_PARSE_NS = 250
FIRES_TARGET = 1_000_000
LATENESS_P99_MS = 1.0
MEMORY_BYTES = 256
SQLITE_FIRES_TARGET = 50_000
PG_FIRES_TARGET = 20_000  # one node, the server local
PG_APS_RATIO = 100  # punctual's durable fires/s over APScheduler's on the same server
PG_LATENESS_P99_MS = 5.0  # 1,000 fires/s over three nodes
OPEN_1M_MS = 1000
SPAWN_RATIO = 1.5
CRON_COMMON = ["*/5 * * * *", "0 9 * * MON-FRI", "0 0 1 * *", "30 2 * * *"]
ZONES = ["UTC", "Europe/Berlin"]


# --- reading -------------------------------------------------------------------------------------
def read_lines(results, name):
    path = os.path.join(results, name)
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                out.append(json.loads(line))
    return out


def read_gbench(results, name):
    """Google Benchmark JSON: (context, {name: ns per iteration}); errors are left out."""
    path = os.path.join(results, name)
    if not os.path.exists(path):
        return {}, {}
    with open(path) as f:
        data = json.load(f)
    scale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
    figures = {}
    for b in data.get("benchmarks", []):
        if b.get("error_occurred"):
            continue
        figures[b["name"]] = b["real_time"] * scale.get(b.get("time_unit", "ns"), 1.0)
    return data.get("context", {}), figures


def run(cmd, cwd=None):
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


# --- formatting ----------------------------------------------------------------------------------
def num(x, digits=3):
    """A figure with `digits` significant digits and thousands separators."""
    if x is None:
        return "—"
    if x == 0:
        return "0"
    if abs(x) >= 10 ** digits:
        return f"{x:,.0f}"
    return f"{x:,.{max(0, digits - 1 - int(_floor_log10(abs(x))))}f}"


def _floor_log10(x):
    n = 0
    while x >= 10:
        x /= 10
        n += 1
    while x < 1:
        x *= 10
        n -= 1
    return n


def ratio(mine, theirs):
    """punctual time / peer time, said both ways."""
    if not mine or not theirs:
        return "—"
    r = mine / theirs
    if abs(r - 1) < 0.005:
        return f"{num(r, 3)}× (even)"
    if r < 1:
        return f"{num(r, 2)}× ({num(1 / r, 3)}× faster)"
    return f"**{num(r, 3)}× ({num(r, 3)}× slower)**"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out) + "\n"


def outage_table(lines):
    """The side-by-side table of pg_outage_apscheduler.py and pg_outage_bench (one JSON line
    each, in `lines`): one column per scheduler, one row per observation."""
    aps = next((x for x in lines if x["scheduler"].startswith("APScheduler")), None)
    mine = next((x for x in lines if x["scheduler"].startswith("punctual")), None)
    cols = [x for x in (aps, mine) if x]

    def yes(v):
        return "yes" if v else "**no**"

    def health(x):
        if "healthy_during" not in x:
            return "— (no health report)"
        if x["healthy_during"]:
            return "healthy throughout"
        return "unhealthy: " + x["health_reason_during"].split(": ")[0].replace("|", "/")

    def first_error(x):
        if not x["error_samples"]:
            return "—"
        e = x["error_samples"][0]
        at = e.find("FATAL:")  # a server's message: the part after the store's own prefix
        return (e[at:] if at >= 0 else e)[:120].replace("|", "/")

    rows = [
        ["writes killed by the trigger", *(x["kills"] for x in cols)],
        ["fault lasted (s)", *(x["during_s"] for x in cols)],
        [f"fires before the fault ({cols[0]['before_s']:g} s)", *(x["fires_before"] for x in cols)],
        ["fires during the fault", *(x["fires_during"] for x in cols)],
        [f"fires after healing ({cols[0]['after_s']:g} s)", *(x["fires_after"] for x in cols)],
        ["scheduling loop alive after healing", *(yes(x["loop_alive"]) for x in cols)],
        ["reports running during / after",
         *(f"{'yes' if x['reported_running_during'] else 'no'} / {'yes' if x['reported_running'] else 'no'}"
           for x in cols)],
        ["health during the fault", *(health(x) for x in cols)],
        ["fire times run twice", *(x["duplicates"] for x in cols)],
        ["errors reported", *(x["errors"] for x in cols)],
        ["first error", *(first_error(x) for x in cols)],
    ]
    return table(["", *(x["scheduler"] for x in cols)], rows)


# --- the report ----------------------------------------------------------------------------------
class Report:
    def __init__(self, args):
        self.args = args
        self.results = args.results
        self.behind = []  # one line per figure where punctual is behind a peer or a target
        self.glance = []  # headline rows
        self.sections = []
        self.plots = []
        self.lateness_reported = set()  # (schedules, rate) already judged in the APScheduler section

    def add(self, text):
        self.sections.append(text)

    # header ---------------------------------------------------------------------------------
    def header(self):
        a = self.args
        cpu = "?"
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        cpu = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        cache = {}
        try:
            with open(os.path.join(a.build, "CMakeCache.txt")) as f:
                for line in f:
                    if "=" in line and ":" in line.split("=", 1)[0] and not line.startswith(("#", "//")):
                        key, value = line.rstrip("\n").split("=", 1)
                        cache[key.split(":", 1)[0]] = value
        except OSError:
            pass
        compiler = cache.get("CMAKE_CXX_COMPILER", "c++")
        compiler_version = run([compiler, "--version"]).splitlines()
        build_type = cache.get("CMAKE_BUILD_TYPE", "?")
        flags = cache.get("CMAKE_CXX_FLAGS_" + build_type.upper(), "")
        commit = run(["git", "rev-parse", "--short", "HEAD"], cwd=a.repo) or "?"
        dirty = run(["git", "status", "--porcelain"], cwd=a.repo)
        load = []
        for name in ("load-start", "load-end"):
            try:
                with open(os.path.join(self.results, name)) as f:
                    load.append(" ".join(f.read().split()[:3]))
            except OSError:
                load.append("?")
        gb_context, _ = read_gbench(self.results, "cron.json")
        versions = []
        for package in ("croniter", "APScheduler", "SQLAlchemy"):
            try:
                versions.append(f"{package} {importlib.metadata.version(package)}")
            except importlib.metadata.PackageNotFoundError:
                versions.append(f"{package} (not installed)")
        sqlite = [x["sqlite"] for x in read_lines(self.results, "sqlite.jsonl") if x.get("part") == "version"]
        rows = [
            ("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
            ("machine", f"{run(['uname', '-srm'])}; {cpu}; {os.cpu_count()} cores"),
            ("load average (1/5/15 min)", f"{load[0]} at the start, {load[1]} at the end"),
            ("compiler", compiler_version[0] if compiler_version else compiler),
            ("build", f"CMake {build_type} (`{flags}`), developer mode off (no `_GLIBCXX_ASSERTIONS`); "
                      f"Google Benchmark library: Debian's, a {gb_context.get('library_build_type', '?')} "
                      "build (it only drives the timing loop)"),
            ("commit", f"`{commit}`" + (" + uncommitted changes" if dirty else " (clean)")),
            ("mode", f"{a.mode}: {a.seconds} s in all, of which {a.build_seconds} s configure + build"),
            ("peers", ", ".join(versions) + f" on Python {platform.python_version()}" +
             (f"; SQLite {sqlite[0]}" if sqlite else "")),
        ]
        return ("# punctual benchmark report\n\n" + table(["", ""], rows) + "\n"
                "Every comparison runs the same workload in the same run. **Ratios are punctual's time "
                "over the peer's time** (time per call, per fire or per job): 0.05× means punctual "
                "takes 1/20 of the time, i.e. is 20× faster; above 1× punctual is slower (bold). "
                "The machine is shared; the load average above says how busy it was.\n")

    # cron -----------------------------------------------------------------------------------
    def cron(self):
        _, gb = read_gbench(self.results, "cron.json")
        peers = read_lines(self.results, "peers_cron.jsonl")
        if not gb:
            self.add("## Cron parse and next()\n\nNo results (trigger_bench did not run).\n")
            return
        peer_names = []
        for p in peers:
            if p["peer"] not in peer_names:
                peer_names.append(p["peer"])
        by = {(p["peer"], p["op"], p["expr"], p["zone"]): p for p in peers}
        exprs = []
        for name in gb:
            if name.startswith("BM_cron_parse/"):
                exprs.append(name[len("BM_cron_parse/"):])
        rows = []
        ratios = {(peer, op): [] for peer in peer_names for op in ("parse", "next")}
        for op in ("parse", "next"):
            for expr in exprs:
                for zone in (["UTC"] if op == "parse" else ZONES):
                    key = f"BM_cron_parse/{expr}" if op == "parse" else f"BM_cron_next/{expr}/{zone}"
                    mine = gb.get(key)
                    if op == "parse":
                        target = CRON_PARSE_NS
                    else:
                        target = CRON_NEXT_COMMON_NS if expr in CRON_COMMON else CRON_NEXT_SPECIAL_NS
                    row = [op, f"`{expr}`", zone if op == "next" else "—", num(mine)]
                    for peer in peer_names:
                        p = by.get((peer, op, expr, zone))
                        if p is None or p["ns"] is None:
                            row += ["cannot express it", "—"]
                            continue
                        spelled = f" (as `{p['as']}`)" if p.get("as") else ""
                        row += [num(p["ns"]) + spelled, ratio(mine, p["ns"])]
                        if mine:
                            ratios[(peer, op)].append(mine / p["ns"])
                            if mine > p["ns"]:
                                self.behind.append(f"cron {op} `{expr}` {zone}: {num(mine)} ns vs {peer} "
                                                   f"{num(p['ns'])} ns ({ratio(mine, p['ns'])})")
                    target_applies = op == "parse" or zone == "UTC"
                    if target_applies and mine is not None:
                        ok = mine <= target
                        row.append(f"≤ {target}" + ("" if ok else " **missed**"))
                        if not ok:
                            self.behind.append(f"cron {op} `{expr}`{' ' + zone if op == 'next' else ''}: "
                                               f"{num(mine)} ns, target ≤ {target} ns")
                    else:
                        row.append("—")
                    rows.append(row)
        header = ["op", "expression", "zone", "punctual ns"]
        for peer in peer_names:
            header += [f"{peer} ns", "punctual/peer time"]
        header.append("target ns (UTC)")
        chained = []
        for n, v in gb.items():
            if n.startswith("BM_cron_next_chained/"):
                rest = n[len("BM_cron_next_chained/"):]
                zone = next((z for z in ZONES if rest.endswith("/" + z)), "")
                chained.append([f"`{rest[:len(rest) - len(zone) - 1] if zone else rest}`", zone, num(v)])
        text = ("## Cron parse and next()\n\n"
                "punctual: `trigger_bench` (Google Benchmark, wall time per call). Peers: "
                "`peers_cron.py`, best of 3 timed loops. next() is timed from the same 1024 "
                "pseudo-random instants over 2020–2030 in both; the peers get their instants already "
                "converted to the zone and croniter returns float timestamps (both in their favour). "
                "A peer spelling is shown where the peer needs another syntax for the same schedule.\n\n"
                + table(header, rows))
        if chained:
            text += ("\nChained next() (each from the previous fire time, as a scheduler calls it), "
                     "punctual only:\n\n" + table(["expression", "zone", "ns"], chained))
        self.add(text)
        for peer in peer_names:
            for op in ("parse", "next"):
                rs = ratios[(peer, op)]
                if rs:
                    what = "expressions" if op == "parse" else "expression × zone pairs"
                    self.glance.append((f"cron {op}, median over {len(rs)} {what}",
                                        peer, f"{num(statistics.median(rs), 2)}× "
                                        f"({num(1 / statistics.median(rs), 2)}× faster)"
                                        if statistics.median(rs) < 1 else
                                        f"**{num(statistics.median(rs), 3)}×**"))

    # other trigger kinds and zones -----------------------------------------------------------
    def other_triggers(self):
        _, kinds = read_gbench(self.results, "trigger_kinds.json")
        _, zone = read_gbench(self.results, "zone.json")
        if not kinds and not zone:
            if self.args.mode == "quick":
                self.add("## Other trigger kinds and time-zone lookups\n\nFull mode only.\n")
            return
        rows = [[f"`{n}`", num(v)] for n, v in list(kinds.items()) + list(zone.items())]
        self.add("## Other trigger kinds and time-zone lookups (punctual only)\n\n"
                 "`trigger_kinds_bench` and `zone_bench`: no Debian-packaged peer computes these "
                 "(calendar intervals with DST policies, combinators, zone segments). Wall time per "
                 "call.\n\n" + table(["benchmark", "ns"], rows))

    # scheduler vs APScheduler -------------------------------------------------------------------
    def scheduler(self):
        mine = read_lines(self.results, "scheduler.jsonl")
        aps = read_lines(self.results, "apscheduler.jsonl")
        thr = {x["schedules"]: x for x in mine if x["part"] == "throughput"}
        real = {x["schedules"]: x for x in mine if x["part"] == "realtime"}
        aps_c = {x["schedules"]: x for x in aps if x["part"] == "ceiling"}
        aps_r = {x["schedules"]: x for x in aps if x["part"] == "realtime"}
        peer = aps[0]["peer"] if aps else "APScheduler"
        rows = []
        for n in sorted(aps_c):
            m, p = thr.get(n), aps_c[n]
            mf = m["fires_per_second"] if m else None
            rows.append([f"{n:,}", num(mf), num(p["fires_per_second"]),
                         ratio(1 / mf if mf else None, 1 / p["fires_per_second"]),
                         f"≥ {FIRES_TARGET:,}" + ("" if mf and mf >= FIRES_TARGET else " **missed**")])
            if mf:
                self.glance.append((f"fires/s ceiling, memory store, {n:,} schedules", peer,
                                    f"{num(mf)} vs {num(p['fires_per_second'])}: "
                                    + ratio(1 / mf, 1 / p["fires_per_second"])))
                if mf < p["fires_per_second"]:
                    self.behind.append(f"fires/s ceiling, {n:,} schedules: {num(mf)} vs {peer} "
                                       f"{num(p['fires_per_second'])}")
        batch = next(iter(thr.values()), {}).get("batch", 512)
        text = ("## Scheduler vs APScheduler 3.9 (memory store, no-op job)\n\n"
                "Workload on both sides: N interval schedules every 1 s, their start times spread "
                "evenly over the second, a no-op job, coalescing on. punctual: one io thread, "
                f"`memory_store`, batch {batch} (the default; `scheduler_bench`). APScheduler: `MemoryJobStore`, its "
                "default `ThreadPoolExecutor` (10 threads) (`apscheduler_fires.py`).\n\n"
                "**Ceiling** — a fake clock moves 1 s at a time and each side runs every due fire "
                "before the next step (punctual: `manual_clock`; APScheduler: its own "
                "`_process_jobs()` under a patched clock). fires/s = fires / wall time; the ratio "
                "is time per fire.\n\n"
                + table(["schedules", "punctual fires/s", f"{peer} fires/s", "punctual/peer time per fire",
                         "target"], rows))
        rows = []
        for n in sorted(aps_r):
            m, p = real.get(n), aps_r[n]
            if not m:
                continue
            self.lateness_reported.add((n, float(m["rate"])))
            rows.append([f"{n:,}", f"{n:,}", num(m["fires_per_second"]), num(p["fires_per_second"]),
                         f"{num(m['lateness_p50_ms'])} / {num(m['lateness_p99_ms'])} / "
                         f"{num(m['lateness_max_ms'])}",
                         f"{num(p['lateness_p50_ms'])} / {num(p['lateness_p99_ms'])} / "
                         f"{num(p['lateness_max_ms'])}",
                         ratio(m["lateness_p99_ms"], p["lateness_p99_ms"])])
            self.glance.append((f"real clock, {n:,} schedules every second: p99 lateness", peer,
                                f"{num(m['lateness_p99_ms'])} ms vs {num(p['lateness_p99_ms'])} ms: "
                                + ratio(m["lateness_p99_ms"], p["lateness_p99_ms"])))
            if m["fires_per_second"] < 0.99 * n:
                self.behind.append(f"real clock, {n:,} schedules every second: punctual ran "
                                   f"{num(m['fires_per_second'])} fires/s of the {n:,} due (it cannot keep up)")
            if m["fires_per_second"] < p["fires_per_second"]:
                self.behind.append(f"real clock, {n:,} schedules every second: punctual ran "
                                   f"{num(m['fires_per_second'])} fires/s, {peer} {num(p['fires_per_second'])}")
            if m["lateness_p99_ms"] > p["lateness_p99_ms"]:
                self.behind.append(f"real clock, {n:,} schedules every second: p99 lateness "
                                   f"{num(m['lateness_p99_ms'])} ms vs {peer} {num(p['lateness_p99_ms'])} ms")
            if m["lateness_p99_ms"] > LATENESS_P99_MS:
                self.behind.append(f"real clock, {n:,} schedules every second: p99 lateness "
                                   f"{num(m['lateness_p99_ms'])} ms, target ≤ {LATENESS_P99_MS:g} ms")
        if rows:
            secs = next(iter(aps_r.values()))["seconds"]
            text += ("\n**Real clock** — the same schedules due at real instants; lateness = run "
                     "start − scheduled fire time (APScheduler's taken where it starts a run, from "
                     f"the run time it passes there), over every run started in {num(secs)} s measured "
                     "after 1 s of warm-up. fires/s below the load means that side cannot keep up "
                     "(its lateness then grows with the run's length).\n\n"
                     + table(["schedules", "load fires/s", "punctual fires/s", f"{peer} fires/s",
                              "punctual lateness p50 / p99 / max ms", f"{peer} p50 / p99 / max ms",
                              "punctual/peer p99"], rows))
        self.add(text)

    # scaling ------------------------------------------------------------------------------------
    def scaling(self):
        mine = read_lines(self.results, "scheduler.jsonl")
        thr = {x["schedules"]: x for x in mine if x["part"] == "throughput"}
        mem = {x["schedules"]: x for x in mine if x["part"] == "memory"}
        add = [x for x in mine if x["part"] == "add"]
        real = {x["schedules"]: x for x in read_lines(self.results, "scaling.jsonl")}
        sizes = sorted(set(thr) | set(mem) | set(real))
        if not sizes:
            return
        rate = next(iter(real.values()))["rate"] if real else 0
        rows = []
        for n in sizes:
            t, r, m = thr.get(n), real.get(n), mem.get(n)
            rows.append([f"{n:,}", num(t["fires_per_second"]) if t else "—",
                         f"{num(r['fires_per_second'])}" if r else "—",
                         f"{num(r['lateness_p50_ms'])} / {num(r['lateness_p99_ms'])} / {num(r['lateness_max_ms'])}"
                         if r else "—",
                         num(m["bytes_per_schedule"]) if m else "—", num(m["trigger_bytes"]) if m else "—"])
            if r and (n, float(rate)) in self.lateness_reported:
                r = dict(r, lateness_p99_ms=0, fires_per_second=rate)  # judged above already
            if r and r["lateness_p99_ms"] > LATENESS_P99_MS:
                self.behind.append(f"p99 lateness with {n:,} schedules at {num(rate)} fires/s: "
                                   f"{num(r['lateness_p99_ms'])} ms, target ≤ {LATENESS_P99_MS:g} ms")
            if r and r["fires_per_second"] < 0.99 * rate:
                self.behind.append(f"{n:,} schedules at {num(rate)} fires/s on the real clock: ran only "
                                   f"{num(r['fires_per_second'])} fires/s")
            if m and m["bytes_per_schedule"] > MEMORY_BYTES:
                self.behind.append(f"memory with {n:,} schedules: {num(m['bytes_per_schedule'])} bytes per "
                                   f"schedule beyond the trigger, target ≤ {MEMORY_BYTES}")
        below = [n for n in sizes if n in thr and thr[n]["fires_per_second"] < FIRES_TARGET]
        if below:
            fs = [thr[n]["fires_per_second"] for n in below]
            self.behind.insert(0, f"**scheduler throughput: {num(min(fs))}–{num(max(fs))} fires/s "
                                  f"({below[0]:,}–{below[-1]:,} schedules, memory store, ceiling), target "
                                  f"{FIRES_TARGET:,} fires/s: {num(FIRES_TARGET / max(fs), 2)}–"
                                  f"{num(FIRES_TARGET / min(fs), 2)}× short**")
        text = ("## Scaling with the number of schedules (punctual, memory store)\n\n"
                "fires/s: the ceiling above (every schedule due every second, fake clock). Lateness: "
                f"real clock with the load held at {num(rate)} fires/s whatever the number of schedules "
                "(each schedule's period = schedules / load), so only the store's size changes. "
                "Memory: heap bytes (mallinfo2, mapped blocks included) the memory store holds per schedule, beyond the "
                f"trigger itself (cron triggers). Targets: ≥ {FIRES_TARGET:,} fires/s, p99 ≤ "
                f"{LATENESS_P99_MS:g} ms, ≤ {MEMORY_BYTES} bytes.\n\n"
                + table(["schedules", "fires/s (ceiling)", f"fires/s at {num(rate)}/s load",
                         "lateness p50 / p99 / max ms", "bytes/schedule beyond the trigger", "trigger bytes"],
                        rows))
        for a in add:
            text += (f"\nAdding {a['schedules']:,} schedules through `scheduler::add_schedule`: "
                     f"{num(a['seconds'])} s ({num(a['us_per_schedule'])} µs each).\n")
        text += "\n![fires per second](scaling-fires.png) ![lateness](scaling-lateness.png) " \
                "![memory](scaling-memory.png)\n"
        self.add(text)
        self.plot_scaling(sizes, thr, real, mem, rate)

    def plot_scaling(self, sizes, thr, real, mem, rate):
        gnuplot = shutil.which("gnuplot")
        if not gnuplot:
            self.add("_Plots skipped: gnuplot is not installed (scripts/install-deps installs "
                     "gnuplot-nox)._\n")
            return
        aps = {x["schedules"]: x for x in read_lines(self.results, "apscheduler.jsonl") if x["part"] == "ceiling"}
        d = self.results

        def write(name, lines):
            with open(os.path.join(d, name), "w") as f:
                f.write("\n".join(lines) + "\n")

        write("fires.dat", [f"{n} {thr[n]['fires_per_second']}" for n in sizes if n in thr])
        write("aps_fires.dat", [f"{n} {aps[n]['fires_per_second']}" for n in sorted(aps)] or ["1 NaN"])
        write("lateness.dat", [f"{n} {real[n]['lateness_p50_ms']} {real[n]['lateness_p99_ms']}"
                               for n in sizes if n in real])
        write("memory.dat", [f"{n} {mem[n]['bytes_per_schedule']} {mem[n]['trigger_bytes']}"
                             for n in sizes if n in mem])
        terminal = "pngcairo size 800,500 font ',10'"
        if subprocess.run([gnuplot, "-e", "set terminal pngcairo"], capture_output=True).returncode != 0:
            terminal = "png size 800,500"
        out = self.args.build
        lo, hi = sizes[0] / 2, sizes[-1] * 2
        fs = [thr[n]["fires_per_second"] for n in thr] + [aps[n]["fires_per_second"] for n in aps]
        f_lo, f_hi = min(fs + [FIRES_TARGET]) / 2, max(fs + [FIRES_TARGET]) * 3
        ls = [v for n in real for v in (real[n]["lateness_p50_ms"], real[n]["lateness_p99_ms"]) if v > 0]
        l_lo, l_hi = min(ls + [LATENESS_P99_MS]) / 2, max(ls + [LATENESS_P99_MS]) * 3
        m_hi = max([mem[n]["bytes_per_schedule"] for n in mem] + [MEMORY_BYTES]) * 1.2
        script = f"""
set terminal {terminal}
set logscale x
set xrange [{lo}:{hi}]
set format x "%.0s%c"
set xlabel "schedules"
set grid
set key top right
set output "{out}/scaling-fires.png"
set title "Fires per second (ceiling, memory store, no-op job)"
set logscale y
set yrange [{f_lo}:{f_hi}]
set format y "%.0s%c"
set ylabel "fires/s"
plot "{d}/fires.dat" using 1:2 with linespoints lw 2 pt 7 title "punctual", \\
     "{d}/aps_fires.dat" using 1:2 with linespoints lw 2 pt 5 title "APScheduler 3.9", \\
     {FIRES_TARGET} with lines dt 2 lc rgb "red" title "target"
set output "{out}/scaling-lateness.png"
set title "Lateness on the real clock at {num(rate)} fires/s"
set yrange [{l_lo}:{l_hi}]
set format y "%g"
set ylabel "ms"
plot "{d}/lateness.dat" using 1:2 with linespoints lw 2 pt 7 title "p50", \\
     "{d}/lateness.dat" using 1:3 with linespoints lw 2 pt 5 title "p99", \\
     {LATENESS_P99_MS} with lines dt 2 lc rgb "red" title "p99 target"
set output "{out}/scaling-memory.png"
set title "Heap bytes per schedule beyond the trigger (memory store, cron triggers)"
unset logscale y
set yrange [0:{m_hi}]
set ylabel "bytes"
set key bottom right
plot "{d}/memory.dat" using 1:2 with linespoints lw 2 pt 7 title "store, per schedule", \\
     "{d}/memory.dat" using 1:3 with linespoints lw 2 pt 5 title "the cron trigger itself", \\
     {MEMORY_BYTES} with lines dt 2 lc rgb "red" title "target"
"""
        with open(os.path.join(d, "scaling.gp"), "w") as f:
            f.write(script)
        r = subprocess.run([gnuplot, os.path.join(d, "scaling.gp")], capture_output=True, text=True)
        if r.returncode != 0:
            self.add(f"_gnuplot failed: {r.stderr.strip()[:300]}_\n")

    # durable store ------------------------------------------------------------------------------
    def sqlite(self):
        aps = read_lines(self.results, "apscheduler_sqlite.jsonl")
        cmp = [x for x in read_lines(self.results, "sqlite_compare.jsonl") if x.get("part") == "fires"]
        own = read_lines(self.results, "sqlite.jsonl")
        fires = [x for x in own if x.get("part") == "fires"]
        opens = [x for x in own if x.get("part") == "open"]
        text = ("## Durable store: SQLite vs APScheduler's SQLAlchemyJobStore\n\n"
                "Per fire, both acquire the due schedule, compute its next fire and write it back, "
                "every commit durable (`synchronous=FULL`, WAL on both sides); punctual also writes one "
                "job row per fire (its run history), APScheduler writes none. Fake clock, 1 s rounds "
                "(`sqlite_bench`, `apscheduler_sqlite.py`). Both are bound by fsync, so the figures "
                "move with the disk's load.\n\n")
        rows = []
        if aps and cmp:
            p = aps[0]
            for m in cmp:
                rows.append([f"{m['schedules']:,} × {m['rounds']}", m["batch"], num(m["fires_per_second"]),
                             num(p["fires_per_second"]),
                             ratio(1 / m["fires_per_second"], 1 / p["fires_per_second"])])
            best = max(cmp, key=lambda m: m["fires_per_second"])
            default = next((m for m in cmp if m["batch"] == 512), best)
            self.glance.append((f"SQLite durable fires/s, {p['schedules']:,} schedules (batch 512)", p["peer"],
                                f"{num(default['fires_per_second'])} vs {num(p['fires_per_second'])}: "
                                + ratio(1 / default["fires_per_second"], 1 / p["fires_per_second"])))
            for m in cmp:
                if m["fires_per_second"] < p["fires_per_second"]:
                    self.behind.append(f"SQLite fires/s, batch {m['batch']}: {num(m['fires_per_second'])} vs "
                                       f"{p['peer']} {num(p['fires_per_second'])}")
            text += table(["schedules × rounds", "punctual batch", "punctual fires/s",
                           f"{p['peer']} fires/s", "punctual/peer time per fire"], rows)
        rows = []
        for m in fires:
            ok = m["fires_per_second"] >= SQLITE_FIRES_TARGET
            rows.append([f"{m['schedules']:,} × {m['rounds']}", m["synchronous"], m["batch"],
                         num(m["fires_per_second"]), num(m["cpu_us_per_fire"]),
                         f"≥ {SQLITE_FIRES_TARGET:,}" + ("" if ok else " **missed**")])
            if not ok:
                self.behind.append(f"SQLite durable fires/s, {m['schedules']:,} schedules, batch {m['batch']}: "
                                   f"{num(m['fires_per_second'])}, target ≥ {SQLITE_FIRES_TARGET:,}")
        if rows:
            text += ("\npunctual alone at larger sizes, against its target:\n\n"
                     + table(["schedules × rounds", "synchronous", "batch", "fires/s", "CPU µs/fire", "target"],
                             rows))
        if opens:
            worst = max(o["open_to_first_fire_ms"] for o in opens)
            text += ("\nOpen → first fire with 1M stored schedules (3 runs): "
                     + ", ".join(num(o["open_to_first_fire_ms"]) + " ms" for o in opens)
                     + f" (target ≤ {OPEN_1M_MS} ms).\n")
            if worst > OPEN_1M_MS:
                self.behind.append(f"SQLite open → first fire with 1M schedules: {num(worst)} ms, "
                                   f"target ≤ {OPEN_1M_MS} ms")
        elif self.args.mode == "quick":
            text += "\nOpen → first fire with 1M stored schedules: full mode only.\n"
        self.add(text)

    # PostgreSQL durable store ---------------------------------------------------------------------
    def postgres(self):
        aps = read_lines(self.results, "apscheduler_postgres.jsonl")
        cmp_lines = read_lines(self.results, "postgres_compare.jsonl")
        own = read_lines(self.results, "postgres.jsonl")
        skipped = os.path.join(self.results, "postgres.skipped")
        if not (aps or cmp_lines or own):
            if os.path.exists(skipped):
                with open(skipped) as f:
                    self.add("## Durable store: PostgreSQL (issue 13)\n\nNot run: " + f.read().strip() + "\n")
            return
        self.add("## Durable store: PostgreSQL (issue 13)\n\n"
                 "The workload of the SQLite section: per fire, acquire the due schedule, compute its next fire "
                 "and write it back, every statement its own commit (punctual never turns synchronous_commit "
                 "off); punctual also writes one job row per fire, APScheduler none. Fake clock, 1 s rounds "
                 "(`postgres_bench`, `apscheduler_postgres.py`). Server CPU: every process of the server, "
                 "from /proc. Durable means fsync on; figures with fsync off (as `.ci/run`'s throwaway "
                 "server runs) follow them, their commits never wait for the disk.\n")
        if os.path.exists(skipped):
            with open(skipped) as f:
                self.add("Partly run: " + f.read().strip() + "\n")
        modes = [m for m in ("on", "off") if any(x.get("fsync") == m for x in aps + cmp_lines + own)]
        for mode in modes:
            def pick(lines, part=None):
                return [x for x in lines if x.get("fsync") == mode and (part is None or x.get("part") == part)]
            self.postgres_mode(mode, pick(aps), pick(cmp_lines, "fires"),
                               next(iter(pick(cmp_lines, "version") + pick(own, "version")), None),
                               pick(own, "fires"), pick(own, "realtime"))

    def postgres_mode(self, mode, aps, cmp, version, fires, realtime):
        """One server's PostgreSQL figures (fsync `mode`); targets are judged on each."""
        tag = f" (fsync {mode})"
        server = (f"PostgreSQL {version['server']}, local, fsync={version['fsync']}, synchronous_commit="
                  f"{version['synchronous_commit']}" if version else "PostgreSQL")
        if mode == "off":
            server += ": commits are not flushed to disk"
        text = f"### fsync {mode}\n\n{server}.\n\n"
        if aps and cmp:
            p = aps[0]
            rows = []
            for m in cmp:
                times = m["fires_per_second"] / p["fires_per_second"]
                rows.append([f"{m['schedules']:,} × {m['rounds']}", m["batch"], num(m["fires_per_second"]),
                             num(p["fires_per_second"]),
                             ratio(1 / m["fires_per_second"], 1 / p["fires_per_second"]),
                             f"≥ {PG_APS_RATIO}× faster" + ("" if times >= PG_APS_RATIO else " **missed**")])
                if times < PG_APS_RATIO:
                    self.behind.append(f"PostgreSQL{tag} durable fires/s, batch {m['batch']}: {num(times)}× "
                                       f"{p['peer']}'s ({num(m['fires_per_second'])} vs "
                                       f"{num(p['fires_per_second'])}), target ≥ {PG_APS_RATIO}×")
            default = next((m for m in cmp if m["batch"] == 512), cmp[0])
            self.glance.append((f"PostgreSQL{tag} durable fires/s, {p['schedules']:,} schedules (batch 512)", p["peer"],
                                f"{num(default['fires_per_second'])} vs {num(p['fires_per_second'])}: "
                                + ratio(1 / default["fires_per_second"], 1 / p["fires_per_second"])))
            text += table(["schedules × rounds", "punctual batch", "punctual fires/s", f"{p['peer']} fires/s",
                           "punctual/peer time per fire", "target"], rows)
        rows = []
        for m in fires:
            one = m["nodes"] == 1
            ok = not one or m["fires_per_second"] >= PG_FIRES_TARGET
            server_us = m.get("server_cpu_us_per_fire")
            rows.append([m["nodes"], f"{m['schedules']:,} × {m['rounds']}", m["batch"], num(m["fires_per_second"]),
                         num(m["cpu_us_per_fire"]), num(server_us) if server_us is not None else "—",
                         (f"≥ {PG_FIRES_TARGET:,}" + ("" if ok else " **missed**")) if one else ""])
            if m["fires"] != m["expected"]:
                self.behind.append(f"PostgreSQL{tag}, {m['nodes']} node(s), batch {m['batch']}: {m['fires']:,} fires, "
                                   f"expected {m['expected']:,}")
            if not ok:
                self.behind.append(f"PostgreSQL{tag} durable fires/s on one node, {m['schedules']:,} schedules, batch "
                                   f"{m['batch']}: {num(m['fires_per_second'])}, target ≥ {PG_FIRES_TARGET:,}")
        if rows:
            text += ("\npunctual alone, one node and three nodes (one store object, io_context and thread "
                     "each) on one schema:\n\n"
                     + table(["nodes", "schedules × rounds", "batch", "fires/s", "client CPU µs/fire",
                              "server CPU µs/fire", "target"], rows))
        for m in realtime:
            ok = m["lateness_p99_ms"] <= PG_LATENESS_P99_MS and m["duplicates"] == 0
            text += (f"\nReal clock, {m['rate']:,} fires/s spread over {m['nodes']} schedulers on one schema "
                     f"({m['seconds']:g} s after a 1 s warm-up): {num(m['fires_per_second'])} fires/s ran "
                     f"(per node: {', '.join(str(c) for c in m['runs_per_node'])}); lateness p50 "
                     f"{num(m['lateness_p50_ms'])} ms, **p99 {num(m['lateness_p99_ms'])} ms**, max "
                     f"{num(m['lateness_max_ms'])} ms (target p99 ≤ {PG_LATENESS_P99_MS:g} ms"
                     f"{'' if ok else ': **missed**'}); {m['duplicates']} fire times ran twice; CPU "
                     f"{num(m['cpu_seconds'])} s client, "
                     f"{num(m['server_cpu_seconds']) if m['server_cpu_seconds'] is not None else '?'} s server.\n")
            if m["lateness_p99_ms"] > PG_LATENESS_P99_MS:
                self.behind.append(f"PostgreSQL{tag}, {m['rate']:,} fires/s over {m['nodes']} nodes: p99 lateness "
                                   f"{num(m['lateness_p99_ms'])} ms, target ≤ {PG_LATENESS_P99_MS:g} ms")
            if m["duplicates"]:
                self.behind.append(f"PostgreSQL{tag}, {m['nodes']} nodes: {m['duplicates']} fire times ran twice")
        self.add(text)

    # PostgreSQL outage ----------------------------------------------------------------------------
    def pg_outage(self):
        lines = read_lines(self.results, "pg_outage.jsonl")
        if not lines:
            if os.path.exists(os.path.join(self.results, "pg_outage.skipped")):
                with open(os.path.join(self.results, "pg_outage.skipped")) as f:
                    self.add("## PostgreSQL outage (issue 13)\n\nNot run: " + f.read().strip() + "\n")
            return
        mine = next((x for x in lines if x["scheduler"].startswith("punctual")), None)
        aps = next((x for x in lines if x["scheduler"].startswith("APScheduler")), None)
        if mine:
            if not mine["loop_alive"]:
                self.behind.append("PostgreSQL outage: punctual did not fire again after the fault healed")
            if mine["duplicates"]:
                self.behind.append(f"PostgreSQL outage: punctual ran {mine['duplicates']} fire times twice")
        if mine and aps:
            self.glance.append((f"fires in the {mine['after_s']:g} s after a PostgreSQL outage healed",
                                aps["scheduler"],
                                f"{mine['fires_after']} vs {aps['fires_after']}"))
        self.add("## PostgreSQL outage (issue 13)\n\n"
                 "One job every second on a PostgreSQL store; then a trigger terminates the backend "
                 "inside the store's own writes (`pg_terminate_backend(pg_backend_pid())` BEFORE "
                 "UPDATE, or INSERT for punctual, for the next few rows), then the trigger is dropped "
                 "and the scheduler watched (`pg_outage_apscheduler.py`, `pg_outage_bench`; "
                 "`tests/benchmarks/pg_outage_compare` runs just this).\n\n" + outage_table(lines))

    # command jobs -------------------------------------------------------------------------------
    def process(self):
        lines = {x["part"]: x for x in read_lines(self.results, "process.jsonl")}
        if not lines:
            return
        s, c = lines.get("sequential"), lines.get("concurrent")
        rows = []
        if s:
            rows.append(["one at a time", f"{num(s['posix_spawn_us_per_job'])} µs/job",
                         f"{num(s['punctual_us_per_job'])} µs/job",
                         ratio(s["punctual_us_per_job"], s["posix_spawn_us_per_job"])])
        if c:
            rows.append(["8 in flight", f"{num(c['posix_spawn_jobs_per_second'])} jobs/s",
                         f"{num(c['punctual_jobs_per_second'])} jobs/s",
                         ratio(1 / c["punctual_jobs_per_second"], 1 / c["posix_spawn_jobs_per_second"])])
        for name, x in (("one at a time", s), ("8 in flight", c)):
            if x and x["time_ratio"] > 1.005:
                verdict = "**missed**" if x["time_ratio"] > SPAWN_RATIO else "met"
                self.behind.append(f"command jobs, {name}: {num(x['time_ratio'])}× the time of a bare "
                                   f"posix_spawn + waitpid loop (target ≤ {SPAWN_RATIO}×: {verdict})")
        if s:
            self.glance.append(("command job spawn-to-exit, one at a time", "posix_spawn + waitpid loop",
                                ratio(s["punctual_us_per_job"], s["posix_spawn_us_per_job"])))
        jobs = (s or c)["jobs"]
        rounds = (s or c)["rounds"]
        self.add("## Command jobs: spawn-to-exit\n\n"
                 f"`/bin/true` × {jobs}, best of {rounds} interleaved rounds (`process_bench`): "
                 "`punctual::async_run` (process group, output capture, exit through the process "
                 "monitor) against a bare `posix_spawn` + `waitpid` loop, which does none of that. "
                 f"Target: at most {SPAWN_RATIO}× the loop's time.\n\n"
                 + table(["", "posix_spawn loop", "punctual", "punctual/loop time"], rows))

    def run_log(self):
        path = os.path.join(self.results, "steps.tsv")
        if not os.path.exists(path):
            return
        rows = []
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) == 3:
                    rows.append([parts[0], parts[1], parts[2]])
        self.add("## Run log\n\nSeconds since the start, the 1-minute load average when the step began "
                 "(2 cores: above 2, the benchmarks waited for a CPU now and then — real-clock "
                 "lateness suffers first), and the step.\n\n" + table(["s", "load", "step"], rows))

    def write(self):
        self.cron()
        self.scheduler()
        self.scaling()
        self.sqlite()
        self.process()
        self.postgres()
        self.pg_outage()
        self.other_triggers()
        self.run_log()
        out = [self.header()]
        out.append("## Behind\n")
        if self.behind:
            out.append("Where punctual is behind a peer or one of its own targets in this run:\n")
            out.extend(f"- {b}" for b in self.behind)
            out.append("")
        else:
            out.append("Nowhere in this run: punctual is ahead of every peer and meets every target.\n")
        if self.glance:
            out.append("## At a glance\n")
            out.append(table(["figure", "peer", "punctual vs peer"], self.glance))
        out.extend(self.sections)
        path = os.path.join(self.args.build, "benchmark-report.md")
        with open(path, "w") as f:
            f.write("\n".join(out))
        return path


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--outage-table":  # pg_outage_compare's table
        with open(sys.argv[2]) as f:
            print(outage_table([json.loads(line) for line in f if line.startswith("{")]), end="")
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--mode", default="full")
    ap.add_argument("--seconds", default="?")
    ap.add_argument("--build-seconds", default="?")
    args = ap.parse_args()
    Report(args).write()


if __name__ == "__main__":
    sys.exit(main())
