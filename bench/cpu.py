"""Where the host's CPU went in a window: per lab node and per systemd unit on it, from the kernel's accounting.

The lab's nodes share the host's cores, where VMs would each have vCPUs of their own; this says how busy the cores
were while a survivor took over, and which daemons kept them busy. Each node's systemd runs its units in cgroups
under the node's own (`lab.cgroups`), and every cgroup v2 group counts the CPU time of whatever ran in it, processes
that have exited included (`cpu.stat`, `usage_usec`), and how long some task in it was ready to run but waited for a
CPU (`cpu.pressure`, `some total`): the direct measure of what sharing the cores cost a daemon. The host's busy share
comes from `/proc/stat`. Reading a few dozen small files costs well under a millisecond: the accounting does not load
the window it measures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

Label = tuple[str, str]
"""(node, unit): the unit is a systemd unit on the node, or "" for the node's whole group"""

NODE = ""
OUTSIDE = "(outside the nodes)"
OTHER = "(the nodes' other units)"


@dataclass(frozen=True)
class Snapshot:
    at: float
    """time.monotonic() when taken"""
    usage: Mapping[Label, int]
    """microseconds on a CPU so far, per group"""
    waits: Mapping[Label, int]
    """microseconds so far during which some task of the group waited for a CPU"""
    host_busy: int
    """the host's busy jiffies (every field of /proc/stat's `cpu` line but idle and iowait)"""
    host_total: int


@dataclass
class Window:
    seconds: float
    host_busy: float
    """share of the host's CPU time busy (0-1)"""
    cpus: int
    used: dict[Label, float] = field(default_factory=dict)
    """CPU seconds per group"""
    waited: dict[Label, float] = field(default_factory=dict)
    """seconds during which some task of the group waited for a CPU"""

    def top(self, n: int = 8) -> list[tuple[str, float]]:
        """The busiest units over every node, then what the nodes ran outside them and what ran outside the nodes
        (the prober, the benchmark), as shares of one CPU."""
        per_unit: dict[str, float] = {}
        for (_, unit), s in self.used.items():
            if unit != NODE:
                per_unit[unit] = per_unit.get(unit, 0.0) + s
        nodes = sum(s for (_, unit), s in self.used.items() if unit == NODE)
        busiest = sorted(per_unit.items(), key=lambda kv: -kv[1])[:n]
        other = max(0.0, nodes - sum(per_unit.values()))
        outside = max(0.0, self.host_busy * self.cpus * self.seconds - nodes)
        return [(u, s / self.seconds) for u, s in [*busiest, (OTHER, other), (OUTSIDE, outside)]]


def host_jiffies(stat: str) -> tuple[int, int]:
    """(busy, total) from /proc/stat's aggregate `cpu` line."""
    fields = [int(v) for v in stat.splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def usage_usec(group: Path) -> int | None:
    try:
        for line in (group / "cpu.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                return int(value)
    except (OSError, ValueError):
        pass
    return None


def wait_usec(group: Path) -> int | None:
    """`some total` of the group's cpu.pressure (none where the kernel keeps no pressure figures)."""
    try:
        for line in (group / "cpu.pressure").read_text().splitlines():
            kind, *fields = line.split()
            if kind == "some":
                return int(dict(f.split("=", 1) for f in fields)["total"])
    except (OSError, ValueError, KeyError):
        pass
    return None


def groups(nodes: Mapping[str, Path]) -> dict[Label, Path]:
    """Each node's cgroup v2 group, and the group of every service its systemd runs (`system.slice/*.service`,
    under `payload/` where systemd-nspawn keeps the container's own tree)."""
    out: dict[Label, Path] = {}
    for node, group in nodes.items():
        if usage_usec(group) is None:
            continue
        out[(node, NODE)] = group
        for slice_ in (group / "payload" / "system.slice", group / "system.slice"):
            for service in sorted(slice_.glob("*.service")):
                out.setdefault((node, service.name.removesuffix(".service")), service)
    return out


def snapshot(at: float, watched: Mapping[Label, Path], proc: Path = Path("/proc")) -> Snapshot:
    usage = {label: u for label, g in watched.items() if (u := usage_usec(g)) is not None}
    waits = {label: u for label, g in watched.items() if (u := wait_usec(g)) is not None}
    busy, total = host_jiffies((proc / "stat").read_text())
    return Snapshot(at, usage, waits, busy, total)


def window(before: Snapshot, after: Snapshot, cpus: int) -> Window:
    """CPU per group between two snapshots (a group gone in between, such as a killed node's, counts for nothing)."""
    total = after.host_total - before.host_total
    w = Window(
        seconds=after.at - before.at,
        host_busy=(after.host_busy - before.host_busy) / total if total > 0 else 0.0,
        cpus=cpus,
    )
    for label, u in after.usage.items():
        if label in before.usage and u >= before.usage[label]:
            w.used[label] = (u - before.usage[label]) / 1e6
    for label, u in after.waits.items():
        if label in before.waits and u >= before.waits[label]:
            w.waited[label] = (u - before.waits[label]) / 1e6
    return w


def unified(candidates: Iterable[Path]) -> Path | None:
    """Of a node's groups (one per hierarchy systemd tracks units in), the cgroup v2 one: it has `cpu.stat`."""
    return next((g for g in candidates if usage_usec(g) is not None), None)


def node_groups(names: Iterable[str], groups_of: Callable[[str], list[Path]]) -> dict[str, Path]:
    """Each running node's cgroup v2 group (`groups_of`: the lab's `containers.groups`)."""
    found = {name: unified(groups_of(name)) for name in names}
    return {name: g for name, g in found.items() if g is not None}
