#!/usr/bin/python3
"""Upstream connections opened per 10,000 requests after warm-up, counted at the upstream,
with each proxy in its production config (Gatehouse: its defaults, no `keepalive` key).

    bench/pool_churn.py                  -c 10 / 50 / 200 / 1000, 3 s warm-up + 8 s measured
    bench/pool_churn.py --quick          1 s + 3 s per run
    bench/pool_churn.py --concurrency 50,1000 --workers 2

For each concurrency, for each proxy in turn (all three kept running through the whole
scan, one worker each unless --workers): a warm-up wrk run, then right after it the
measured run. Around the measured run the upstream nginx's stub_status (a second port) is
read: `accepts` after − before − 1 (the reading connection itself counts) = upstream
connections opened by the proxy during the run. Also: the proxy's open descriptors
(/proc/PID/fd; nginx master + workers) at start, just before the warm-up, in the middle
of the measured run and 1 s after it, and the upstream's active connections mid-run (the
proxy's pool in use). Proxy, upstream and wrk are unpinned (the shared-cores set-up of
issue 13), wrk -t1 (-t2 from -c200). Loopback only; every process is stopped by PID; the
temp dir is removed unless --keep.
"""

from __future__ import annotations

import argparse
import datetime
import resource
import sys
import threading
import time

import prodbench
from benchlib import fmt_num, log
from prodbench import ProdBench, fd_count, upstream_conns

CONCURRENCY = (10, 50, 200, 1000)


def measure(bench: ProdBench, target, conns: int, warmup: int, seconds: int) -> dict:
    threads = 1 if conns < 200 else 2
    fd_start = fd_count(target.pids())
    bench.wrk(target, "/", warmup, conns, None, cpus=None, threads=threads, record=False)
    fd_before = fd_count(target.pids())
    before = bench.upstream_status()
    mid: dict = {}

    def sample_mid():
        mid["fds"] = fd_count(target.pids())
        mid["status"] = bench.upstream_status()
        mid["pool"] = upstream_conns(target.pids(), bench.up_port)
    timer = threading.Timer(seconds / 2, sample_mid)
    timer.start()
    res = bench.wrk(target, "/", seconds, conns, None, cpus=None, threads=threads)
    timer.join()
    after = bench.upstream_status()
    time.sleep(1.0)
    fd_after = fd_count(target.pids())
    # status reads in the window (mid and after) are accepts too
    opened = after["accepts"] - before["accepts"] - (1 + ("status" in mid))
    # second half alone (past the client connections' set-up): after - mid - the after read
    late = after["accepts"] - mid["status"]["accepts"] - 1 if "status" in mid else None
    return {"requests": res["requests"], "rps": res["rps"], "opened": opened,
            "per10k": opened * 10000 / res["requests"] if res["requests"] else None,
            "fd_start": fd_start, "fd_before": fd_before, "fd_mid": mid.get("fds"),
            "fd_after": fd_after,
            "opened_late": late, "pool_mid": mid.get("pool"),
            "pool_after": upstream_conns(target.pids(), bench.up_port),
            "errors": res["errors"] + res["non2xx"], "cmd": res["cmd"]}


def table(results: list[dict]) -> list[str]:
    rows = ["| wrk -c | proxy | requests (measured) | req/s | upstream connections opened | "
            "per 10,000 requests | of them in the 2nd half | proxy's upstream connections "
            "mid-run / 1 s after | proxy fds: start / after warm-up / mid-run / 1 s after | "
            "errors |",
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |"]
    for r in results:
        rows.append(f"| {r['conns']} | {r['proxy']} | {fmt_num(r['requests'])} | "
                    f"{fmt_num(r['rps'])} | {r['opened']} | {fmt_num(r['per10k'], 2)} | "
                    f"{fmt_num(r['opened_late'])} | {fmt_num(r['pool_mid'])} / {r['pool_after']} | "
                    f"{r['fd_start']} / {r['fd_before']} / "
                    f"{fmt_num(r['fd_mid'])} / {r['fd_after']} | {r['errors']} |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 s warm-up + 3 s measured")
    parser.add_argument("--concurrency", default=",".join(map(str, CONCURRENCY)),
                        help="wrk -c values (default 10,50,200,1000)")
    parser.add_argument("--warmup", type=int, help="warm-up seconds (default 3)")
    parser.add_argument("--duration", type=int, help="measured seconds (default 8)")
    parser.add_argument("--workers", type=int, default=1,
                        help="workers/processes/threads of every proxy (default 1)")
    prodbench.common_args(parser)
    args = parser.parse_args()
    warmup = args.warmup or (1 if args.quick else 3)
    seconds = args.duration or (3 if args.quick else 8)
    levels = [int(c) for c in args.concurrency.split(",")]

    def body(bench: ProdBench, load: str) -> list[str]:
        targets = prodbench.start_proxies(bench, args.workers, None)
        results = []
        for conns in levels:
            for t in targets:
                r = measure(bench, t, conns, warmup, seconds)
                r.update(conns=conns, proxy=t.name)
                results.append(r)
                log(f"-c{conns:<5} {t.name:<10} {r['requests']:>9,} req, {r['opened']:>5} "
                    f"upstream connects = {fmt_num(r['per10k'], 2)} per 10k; fds "
                    f"{r['fd_start']}/{r['fd_before']}/{r['fd_mid']}/{r['fd_after']}; "
                    f"upstream pool {r['pool_mid']}/{r['pool_after']}, 2nd half {r['opened_late']}")
        now = datetime.datetime.now(datetime.timezone.utc)
        L = [f"### Upstream connections per 10,000 requests ({now:%Y-%m-%d %H:%M} UTC)",
             "", f"`bench/pool_churn.py{''.join(' ' + a for a in sys.argv[1:])}`: "
             f"{warmup} s warm-up + {seconds} s measured per proxy and concurrency, "
             f"{args.workers} worker(s) each, everything unpinned; {load}; descriptor "
             f"limit {resource.getrlimit(resource.RLIMIT_NOFILE)[0]:,}; Gatehouse "
             f"{bench.gatehouse_desc}.", ""]
        L += table(results) + [""]
        L += [f"wrk: `{results[0]['cmd']}` (then -c/-t per row)." if results else ""]
        return L
    return prodbench.run_main(args, args.workers, seconds, body)


if __name__ == "__main__":
    sys.exit(main())
