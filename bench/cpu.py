"""Where the host's CPU went in a window: per process, per lab node, from the kernel's own accounting.

The lab's nodes share the host's cores, where VMs would each have vCPUs of their own; this says how busy the cores
were while a survivor took over, and which daemons on which nodes kept them busy. A thread's time on a CPU comes from
`/proc/<pid>/task/<tid>/schedstat` (nanoseconds); the host's busy share from `/proc/stat`. A process born and gone
inside the window (an agent's forks) is in the host's figure but in no process's: the difference is `exited`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

Thread = tuple[int, int]
"""(pid, tid)"""


@dataclass(frozen=True)
class Snapshot:
    at: float
    """time.monotonic() when taken"""
    threads: Mapping[Thread, int]
    """nanoseconds on a CPU, per thread"""
    host_busy: int
    """the host's busy jiffies (every field of /proc/stat's `cpu` line but idle and iowait)"""
    host_total: int


@dataclass
class Window:
    seconds: float
    host_busy: float
    """share of the host's CPU time busy (0-1)"""
    cpus: int
    by_process: dict[tuple[str, str], float] = field(default_factory=dict)
    """CPU seconds per (node or "host", command)"""

    @property
    def exited(self) -> float:
        """CPU seconds of processes that ran and exited inside the window (the host's figure less the attributed)."""
        return max(0.0, self.host_busy * self.cpus * self.seconds - sum(self.by_process.values()))

    def top(self, n: int = 8) -> list[tuple[str, float]]:
        """The busiest commands over every node, as shares of one CPU."""
        per_command: dict[str, float] = {}
        for (_, command), s in self.by_process.items():
            per_command[command] = per_command.get(command, 0.0) + s
        busiest = sorted(per_command.items(), key=lambda kv: -kv[1])[:n]
        out = [(command, s / self.seconds) for command, s in busiest]
        return [*out, ("(exited in the window)", self.exited / self.seconds)]


def host_jiffies(stat: str) -> tuple[int, int]:
    """(busy, total) from /proc/stat's aggregate `cpu` line."""
    fields = [int(v) for v in stat.splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def node_of(cgroup: str, lab: str, nodes: Iterable[str]) -> str:
    """The lab node whose group a process is in (its `/proc/<pid>/cgroup`: `<own group>/<lab>/<node>/...`)."""
    for node in nodes:
        if re.search(rf"/{re.escape(lab)}/{re.escape(node)}(/|$)", cgroup, re.MULTILINE):
            return node
    return "host"


def snapshot(at: float, proc: Path = Path("/proc")) -> Snapshot:
    threads: dict[Thread, int] = {}
    for pid in (p for p in os.listdir(proc) if p.isdigit()):
        try:
            for tid in os.listdir(proc / pid / "task"):
                threads[(int(pid), int(tid))] = int((proc / pid / "task" / tid / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    busy, total = host_jiffies((proc / "stat").read_text())
    return Snapshot(at, threads, busy, total)


def label(pid: int, lab: str, nodes: Iterable[str], proc: Path = Path("/proc")) -> tuple[str, str]:
    try:
        node = node_of((proc / str(pid) / "cgroup").read_text(), lab, nodes)
        return node, (proc / str(pid) / "comm").read_text().strip()
    except OSError:
        return "host", "(exited)"


def window(before: Snapshot, after: Snapshot, labels: Mapping[int, tuple[str, str]], cpus: int | None = None) -> Window:
    """CPU per process between two snapshots. A thread first seen in `after` was born in the window: all its time
    counts."""
    total = after.host_total - before.host_total
    w = Window(
        seconds=after.at - before.at,
        host_busy=(after.host_busy - before.host_busy) / total if total > 0 else 0.0,
        cpus=cpus or os.cpu_count() or 1,
    )
    for (pid, tid), ns in after.threads.items():
        spent = ns - before.threads.get((pid, tid), 0)
        if spent > 0:
            who = labels.get(pid, ("host", "(exited)"))
            w.by_process[who] = w.by_process.get(who, 0.0) + spent / 1e9
    return w


def measure(before: Snapshot, after: Snapshot, lab: str, nodes: Iterable[str], proc: Path = Path("/proc")) -> Window:
    """`window`, labelling each process (node, command) as /proc shows it now (`lab`: the lab's group, its netns)."""
    names = list(nodes)
    labels = {pid: label(pid, lab, names, proc) for pid in {pid for pid, _ in after.threads}}
    return window(before, after, labels)
