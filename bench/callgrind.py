#!/usr/bin/env python3
"""User-space instructions per proxied request, counted by valgrind's callgrind.

Instruction counts do not depend on what else the machine runs, unlike wall-clock or
CPU-time ratios on a shared VM. Setup: the bench upstream (nginx `return 200`), one
Gatehouse worker under callgrind, and a fixed number of small keep-alive GETs from a
few connections (like wrk's). Counting is zeroed after a warm-up and dumped after the
measured requests, so start-up and shut-down are left out.

    bench/callgrind.py --gatehouse build/proxy/gatehouse [--requests 6000] [--top 25]
    bench/callgrind.py --gatehouse build/proxy/gatehouse --h2c   # HTTP/2 (h2load, 10 x 10)

--h2c profiles the HTTP/2 path without TLS (a plain listener with h2c = true, h2load's
prior knowledge), so the codec's cost is not buried under the cipher's.

Prints total Ir / requests and the functions with the most inclusive and self cost.
Loopback only; every process it starts is stopped by its PID.
"""
import argparse
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench_run  # noqa: E402  (the bench's upstream config)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def listener_port(ready_file: Path) -> int | None:
    if not ready_file.exists():
        return None
    for line in ready_file.read_text().splitlines():
        if line.startswith("listener "):
            return int(line.rsplit(":", 1)[1])
    return None


def drive(port: int, total: int, connections: int) -> None:
    """Sends `total` GET / on `connections` keep-alive connections, one in flight each."""
    request = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    sel = selectors.DefaultSelector()
    sent = done = 0
    for _ in range(min(connections, total)):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(request)
        sent += 1
        sel.register(sock, selectors.EVENT_READ, bytearray())
    while done < total:
        for key, _ in sel.select(timeout=30):
            sock, data = key.fileobj, key.data
            chunk = sock.recv(65536)
            if not chunk:
                raise SystemExit("the proxy closed a connection")
            data += chunk
            head_end = data.find(b"\r\n\r\n")
            if head_end < 0:
                continue
            head = data[:head_end].decode("latin-1").lower()
            if not head.startswith("http/1.1 200"):
                raise SystemExit(f"unexpected response: {head.splitlines()[0]}")
            length = int(head.split("content-length:")[1].split("\r\n")[0])
            if len(data) < head_end + 4 + length:
                continue
            del data[:head_end + 4 + length]
            done += 1
            if sent < total:
                sock.sendall(request)
                sent += 1
    for key in list(sel.get_map().values()):
        key.fileobj.close()


def drive_h2c(port: int, total: int, connections: int) -> None:
    subprocess.run(["h2load", "-c", str(connections), "-m", "10", "-n", str(total),
                    f"http://127.0.0.1:{port}/"], check=True, capture_output=True, timeout=600)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def total_ir(dump: Path) -> int:
    for line in dump.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"no totals in {dump}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gatehouse", required=True)
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--keep", help="directory to keep the callgrind dump in")
    parser.add_argument("--h2c", action="store_true",
                        help="HTTP/2 with prior knowledge, driven by h2load -m 10")
    args = parser.parse_args()

    work = Path(args.keep or tempfile.mkdtemp(prefix="gh-callgrind-"))
    work.mkdir(parents=True, exist_ok=True)
    up_port = free_port()
    (work / "upstream.conf").write_text(bench_run.upstream_nginx_conf(work, up_port))
    (work / "www").mkdir(exist_ok=True)
    config = bench_run.gatehouse_conf(1, up_port, free_port(), None, 1000)
    if args.h2c:
        config = config.replace('address = "127.0.0.1:0"\n', 'address = "127.0.0.1:0"\nh2c = true\n', 1)
    (work / "gatehouse.toml").write_text(config)
    ready = work / "ready"
    ready.unlink(missing_ok=True)
    out_prefix = work / "callgrind.out"
    for old in work.glob("callgrind.out*"):
        old.unlink()

    upstream = subprocess.Popen(["nginx", "-c", str(work / "upstream.conf"), "-p", str(work)],
                                stderr=subprocess.DEVNULL)
    proxy = None
    try:
        proxy = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_prefix}.%p",
             args.gatehouse, "-c", str(work / "gatehouse.toml"), "--ready-file", str(ready)],
            stdout=subprocess.DEVNULL, stderr=open(work / "valgrind.log", "w"))
        wait_for(lambda: listener_port(ready) is not None, 120, "Gatehouse's ready file")
        port = listener_port(ready)
        run = drive_h2c if args.h2c else drive
        run(port, args.warmup, args.connections)
        subprocess.run(["callgrind_control", "--zero", str(proxy.pid)], check=True,
                       capture_output=True)
        started = time.monotonic()
        run(port, args.requests, args.connections)
        elapsed = time.monotonic() - started
        subprocess.run(["callgrind_control", "--dump=measured", str(proxy.pid)], check=True,
                       capture_output=True)
    finally:
        if proxy:
            stop(proxy)
        stop(upstream)

    dumps = sorted(work.glob(f"callgrind.out.{proxy.pid}.*"))
    measured = [d for d in dumps if "measured" in d.read_text(errors="replace")[:2000]]
    if not measured:
        raise SystemExit(f"no measured dump among {dumps}")
    dump = measured[0]
    ir = total_ir(dump)
    print(f"{args.requests} requests in {elapsed:.1f} s under callgrind; "
          f"{ir:,} Ir = {ir / args.requests:,.0f} instructions per request")
    print(f"dump: {dump}")
    for flag, title in (("--inclusive=yes", "inclusive"), ("--inclusive=no", "self")):
        annotate = subprocess.run(["callgrind_annotate", flag, "--auto=no", "--threshold=100",
                                   str(dump)], capture_output=True, text=True).stdout
        print(f"\n## {title}, per request (top {args.top})")
        shown = 0
        for line in annotate.split("file:function", 1)[-1].splitlines():
            row = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)", line)
            if not row:
                continue
            count = int(row.group(1).replace(",", ""))
            # Zeroing mid-run leaves the whole count on the frames that were active then
            # (thread start, the loop): not a cost of their own.
            if title == "self" and count > ir * 0.9:
                continue
            print(f"{count / args.requests:10,.0f}  {row.group(2)[:150]}")
            shown += 1
            if shown >= args.top:
                break

if __name__ == "__main__":
    os.umask(0o022)
    main()
