"""What the soak reads from /proc about one process, and a least-squares fit."""

from __future__ import annotations

import math
import os

CLK_TCK = os.sysconf("SC_CLK_TCK")
TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
              "05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
              "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}


def rss_kib(pid: int) -> int:
    """VmRSS (the whole process: Gatehouse's workers are threads)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all threads), in seconds."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def tcp_sockets_to(pid: int, remote_ports: set[int]) -> dict[str, str]:
    """{inode: TCP state} of the sockets `pid` holds whose remote end is 127.0.0.1 on one
    of `remote_ports` (IPv4 only: everything in the soak is 127.0.0.1)."""
    mine = socket_inodes(pid)
    wanted = {f"0100007F:{port:04X}" for port in remote_ports}
    found = {}
    with open("/proc/net/tcp", encoding="ascii") as f:
        next(f)
        for line in f:
            parts = line.split()
            if parts[2] in wanted and parts[9] in mine:
                found[parts[9]] = TCP_STATES.get(parts[3], parts[3])
    return found


def least_squares(xs: list[float], ys: list[float]) -> dict:
    """slope, intercept, standard error of the slope and residual standard deviation."""
    n = len(xs)
    if n < 2:
        return dict(slope=0.0, intercept=ys[0] if ys else 0.0, slope_se=0.0, resid_sd=0.0)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    slope = sxy / sxx if sxx else 0.0
    intercept = my - slope * mx
    resid = [y - (intercept + slope * x) for x, y in zip(xs, ys)]
    resid_sd = math.sqrt(sum(r * r for r in resid) / (n - 2)) if n > 2 else 0.0
    slope_se = resid_sd / math.sqrt(sxx) if sxx and n > 2 else 0.0
    return dict(slope=slope, intercept=intercept, slope_se=slope_se, resid_sd=resid_sd)
