#!/usr/bin/python3
"""Shared cores (issue 13): proxy, upstream and wrk unpinned on all CPUs, each proxy in its
production config (Gatehouse defaults, nginx `keepalive 64`, HAProxy defaults; see
bench/prodbench.py), small GET.

    bench/shared_cores.py                 5 interleaved rounds × 10 s, 1 worker, wrk -t1 -c50
    bench/shared_cores.py --workers 2     the same with 2 workers each, wrk -t2 -c50
    bench/shared_cores.py --workers 1,2   both, one after the other
    bench/shared_cores.py --quick         1 round × 3 s, no warm-up

Per run: req/s and p99 (wrk --latency); machine-wide CPU per request = (total − idle −
iowait) jiffies of /proc/stat over the run ÷ requests (everything on the machine, other
people's builds included); the set-up's CPU per request = proxy + upstream nginx + wrk
(utime + stime from /proc/PID/stat, wrk from this script's child rusage) ÷ requests, the
same figure without outside work; proxy CPU per request; and the share of all CPUs used by
anything else during the run (the noise gauge). Ratios: per round Gatehouse ÷ the better
of nginx and HAProxy in that round, median (min–max) over the rounds.
Loopback only; every process is stopped by PID; the temp dir is removed unless --keep.
"""

from __future__ import annotations

import argparse
import datetime
import os
import resource
import sys
import time
from pathlib import Path

import prodbench
from benchlib import (CLK_TCK, OTHERS, cpu_ticks, fmt_ms, fmt_num, fmt_paired,
                      fmt_pct, interleave, log, median, paired, paired_table)

CONNS = 50


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs: busy = total − idle − iowait."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(v) - v[3] - v[4], sum(v)


def children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def one_run(bench: prodbench.ProdBench, target, seconds: int, threads: int, record: bool) -> dict:
    up_pids = bench.upstream_proc.pids()
    up0, wrk0, (busy0, total0) = cpu_ticks(up_pids), children_cpu_s(), machine_jiffies()
    res = bench.wrk(target, "/", seconds, CONNS, None, cpus=None, threads=threads,
                    record=record)
    busy1, total1 = machine_jiffies()
    upstream_s = (cpu_ticks(up_pids) - up0) / CLK_TCK
    wrk_s = children_cpu_s() - wrk0
    machine_s = (busy1 - busy0) / CLK_TCK
    setup_s = (res["proxy_cpu_s"] or 0) + upstream_s + wrk_s
    n = res["requests"] or None
    res.update({
        "machine_us": machine_s * 1e6 / n if n else None,
        "setup_us": setup_s * 1e6 / n if n else None,
        "upstream_us": upstream_s * 1e6 / n if n else None,
        "wrk_us": wrk_s * 1e6 / n if n else None,
        "machine_pct": 100.0 * (busy1 - busy0) / max(1, total1 - total0),
        "outside_pct": max(0.0, 100.0 * (machine_s - setup_s) * CLK_TCK / max(1, total1 - total0)),
        "others_pct": None,  # benchlib's pinned-CPU gauge; not meaningful unpinned
    })
    if n:
        log(f"    {target.label:<10} machine {res['machine_us']:.1f} µs/req "
            f"({res['machine_pct']:.0f} % of all CPUs, {res['outside_pct']:.0f} % outside work), "
            f"set-up {res['setup_us']:.1f} µs/req (upstream {res['upstream_us']:.1f}, "
            f"wrk {res['wrk_us']:.1f})")
    return res


METRICS = (("rps", "req/s (> 1: Gatehouse faster)", True),
           ("p99_ms", "p99 latency (< 1: Gatehouse better)", False),
           ("machine_us", "machine-wide CPU per request (all processes, /proc/stat)", False),
           ("setup_us", "set-up CPU per request (proxy + upstream + wrk)", False),
           ("cpu_us", "proxy CPU per request", False))


def section(summary: dict, workers: int, threads: int, seconds: int, rounds: int) -> list[str]:
    labels = ["gatehouse", *OTHERS]
    L = [f"### {workers} worker{'s' if workers > 1 else ''} each, wrk -t{threads} -c{CONNS}, "
         f"{rounds} round(s) × {seconds} s", "",
         "| proxy | req/s (median) | min–max | p50 | p99 | machine CPU µs/req | set-up CPU "
         "µs/req | proxy CPU µs/req | upstream µs/req | wrk µs/req | all CPUs busy | outside "
         "work | errors |",
         "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label in labels:
        s = summary[label]
        m = lambda k: median(r.get(k) for r in s["runs"])  # noqa: E731
        L.append(f"| {label} | {fmt_num(s['rps'])} | {fmt_num(s['rps_min'])}–"
                 f"{fmt_num(s['rps_max'])} | {fmt_ms(s['p50_ms'])} | {fmt_ms(s['p99_ms'])} | "
                 f"{fmt_num(m('machine_us'), 1)} | {fmt_num(m('setup_us'), 1)} | "
                 f"{fmt_num(s['cpu_us'], 1)} | {fmt_num(m('upstream_us'), 1)} | "
                 f"{fmt_num(m('wrk_us'), 1)} | {fmt_pct(m('machine_pct'))} | "
                 f"{fmt_pct(m('outside_pct'))} | {s['errors']} |")
    L += ["", "Gatehouse ÷ the others, paired by round: median of the per-round ratios "
          "(min–max).", "", "| metric | ÷ better of nginx/HAProxy | ÷ nginx | ÷ HAProxy |",
          "| --- | ---: | ---: | ---: |"]
    for metric, title, higher in METRICS:
        L.append(f"| {title} | " + " | ".join(
            fmt_paired(paired(summary, metric, v, higher)) for v in ("best", *OTHERS)) + " |")
    L += ["", "Targets (issue 13): req/s ≥ 1.1×, machine CPU/request ≤ 0.9×, p99 ≤ 1.0× the "
          "better of nginx/HAProxy: " + verdict(summary), ""]
    return L


def verdict(summary: dict) -> str:
    def med(metric, higher):
        r = paired(summary, metric, "best", higher)
        return median(r)
    rps, cpu, p99 = med("rps", True), med("machine_us", False), med("p99_ms", False)
    parts = []
    for name, v, ok in (("req/s", rps, rps is not None and rps >= 1.1),
                        ("machine CPU/request", cpu, cpu is not None and cpu <= 0.9),
                        ("p99", p99, p99 is not None and p99 <= 1.0)):
        parts.append(f"{name} {'—' if v is None else f'{v:.2f}×'} "
                     f"{'met' if ok else 'NOT met'}")
    return "; ".join(parts) + "."


def every_run(results: dict) -> list[str]:
    L = ["| workers | proxy | round | req/s | p99 | machine µs/req | set-up µs/req | proxy "
         "µs/req | outside work |", "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for workers, summary in results.items():
        for label, s in summary.items():
            for i, r in enumerate(s["runs"]):
                L.append(f"| {workers} | {label} | {i + 1} | {fmt_num(r['rps'])} | "
                         f"{fmt_ms(r['p99_ms'])} | {fmt_num(r['machine_us'], 1)} | "
                         f"{fmt_num(r['setup_us'], 1)} | {fmt_num(r['cpu_us'], 1)} | "
                         f"{fmt_pct(r['outside_pct'])} |")
    return L


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round × 3 s, no warm-up")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5)")
    parser.add_argument("--duration", type=int, help="seconds per run (default 10)")
    parser.add_argument("--workers", default="1",
                        help="comma-separated worker counts, each a pass (default 1)")
    prodbench.common_args(parser)
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 5)
    seconds = args.duration or (3 if args.quick else 10)
    passes = [int(w) for w in args.workers.split(",")]

    started = time.monotonic()

    def body(bench: prodbench.ProdBench, load: str) -> list[str]:
        results: dict[int, dict] = {}
        for workers in passes:
            prodbench.set_workers(workers)
            threads = min(workers, 2)
            targets = [bench.start_proxy(k, workers=workers, cpus=None, label=f"{k}-{workers}w")
                       for k in ("gatehouse", *OTHERS)]
            for t in targets:
                t.label = t.name
            log(f"{workers} worker(s) each, wrk -t{threads} -c{CONNS}, {rounds} × {seconds} s")
            try:
                results[workers] = interleave(
                    bench, targets, f"shared-{workers}w", rounds,
                    lambda t, sec, rec: one_run(bench, t, sec, threads, rec), "req")
            finally:
                for t in targets:
                    t.stop()
        now = datetime.datetime.now(datetime.timezone.utc)
        L = [f"## Shared cores ({now:%Y-%m-%d %H:%M} UTC)", "",
             f"`bench/shared_cores.py{''.join(' ' + a for a in sys.argv[1:])}` "
             f"({(time.monotonic() - started) / 60:.1f} min): {load}; load average "
             f"{os.getloadavg()[0]:.2f} at the end. Gatehouse {bench.gatehouse_desc}. Proxy, "
             f"upstream and wrk unpinned on {os.cpu_count()} CPUs.", ""]
        for workers, summary in results.items():
            L += section(summary, workers, min(workers, 2), seconds, rounds)
        L += ["### Every run", ""] + every_run(results) + [""]
        L += [f"wrk: `{next(iter(results.values()))['gatehouse']['runs'][0]['cmd']}` "
              "(its port per proxy; -t2 with 2 workers)", ""]
        return L
    return prodbench.run_main(args, passes[0], seconds, body)


if __name__ == "__main__":
    sys.exit(main())
