"""A node's cluster journal around an event, and when each step of losing a node shows in it (the benchmarks')."""

from __future__ import annotations

import re
import shlex
import time
from datetime import datetime

from lab import operations as ops

_STAMP = re.compile(r"^(\w{3} +\d+ \d\d:\d\d:\d\d\.\d+) ")


def when(line: str) -> float | None:
    m = _STAMP.match(line)
    if m is None:
        return None
    stamp = datetime.strptime(f"{datetime.now().year} {m.group(1)}", "%Y %b %d %H:%M:%S.%f")
    return stamp.timestamp()


def phases(lines: list[str], node: str, since: float) -> dict[str, float]:
    """Seconds after `since` at which the survivor's journal first shows each step of losing `node`."""
    marks = {
        "membership lost": f"Node {node} state is now lost",
        "fence requested": f"Requesting fencing (reboot) of node {node}",
        "fence done": f"Operation 'reboot' targeting {node}",
        "VIP started": "Result of start operation for vip",
        "haproxy ready": "Started haproxy.service",  # systemd's word: HAProxy (ordered after the VIP) serves
        "haproxy started": "Result of start operation for haproxy",  # Pacemaker's word, which comes later
    }
    out: dict[str, float] = {}
    for line in lines:
        at = when(line)
        for name, text in marks.items():
            if at is not None and at >= since and name not in out and text in line:
                out[name] = round(at - since, 2)
    return out


def journal(ctx: ops.LabContext, node: str, since: float) -> list[str]:
    """The node's pacemaker, corosync and haproxy journal since `since` (epoch s)."""
    stamp = shlex.quote(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since - 1)))
    command = f"journalctl -u pacemaker -u corosync -u haproxy --no-pager -o short-precise --since {stamp}"
    ok, out = ctx.on(node, command, timeout=30)
    return out.splitlines() if ok else []
