"""Where the lab's CPU went while a survivor took over: per node and per service on it, from the kernel's accounting.

The lab's nodes share the host's cores, where VMs would each have vCPUs of their own. Each node's systemd runs its
units in cgroups under the node's own (`lab.cgroups`), and every cgroup v2 group counts:
- `cpu.stat` `usage_usec`: the CPU time of whatever ran in it, processes that have exited included;
- `cpu.pressure` `some total`: time during which some task of the group was ready to run and had no CPU (the
  kernel's PSI, averaged over the CPUs by their busy time: an indicator of the cost of sharing the cores, not the
  delay of any one step). Absent where the kernel keeps no pressure figures.

A snapshot re-reads two small files for each node and each watched service (30 at 5 nodes) through descriptors
opened once (`Reader`): about 0.1 ms of CPU. `CpuWatch` in bench.failover takes one every 25 ms and cuts the window
between two of them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

Label = tuple[str, str]
"""(node, unit): the unit is a systemd service on the node, or NODE for the node's whole group"""

NODE = ""
OTHER = "(the nodes' other processes)"
WATCHED = ("corosync", "pacemaker")
"""The services on the path to the VIP: the membership layer, and Pacemaker (its daemons and the agents it runs)."""


@dataclass(frozen=True)
class Snapshot:
    at: float
    """seconds (time.monotonic())"""
    usage: Mapping[Label, int]
    """microseconds on a CPU so far, per group"""
    waits: Mapping[Label, int]
    """microseconds so far during which some task of the group waited for a CPU"""
    cost: float = 0.0
    """CPU seconds taking it took"""


@dataclass
class Window:
    seconds: float
    cpus: int
    used: dict[Label, float] = field(default_factory=dict)
    """CPU seconds per group"""
    waited: dict[Label, float] = field(default_factory=dict)
    """seconds during which some task of the group waited for a CPU (none without pressure figures)"""
    cost: float = 0.0
    """CPU seconds the snapshots inside the window took (the accounting's own share of it)"""

    @property
    def nodes_share(self) -> float:
        """The nodes' CPU time as a share of the host's cores over the window (0-1)."""
        nodes = sum(s for (_, unit), s in self.used.items() if unit == NODE)
        return nodes / (self.cpus * self.seconds) if self.seconds > 0 else 0.0

    def top(self) -> list[tuple[str, float]]:
        """Each watched service over every node, then the rest of the nodes, as shares of one CPU."""
        per_unit: dict[str, float] = {}
        for (_, unit), s in self.used.items():
            if unit != NODE:
                per_unit[unit] = per_unit.get(unit, 0.0) + s
        nodes = sum(s for (_, unit), s in self.used.items() if unit == NODE)
        busiest = sorted(per_unit.items(), key=lambda kv: -kv[1])
        other = max(0.0, nodes - sum(per_unit.values()))
        return [(u, s / self.seconds) for u, s in [*busiest, (OTHER, other)]] if self.seconds > 0 else []


def field_of(text: str, line_key: str, field_key: str) -> int | None:
    """`field_key`'s integer on the line starting with `line_key` ("usage_usec 12" or "some avg10=0 total=12")."""
    try:
        for line in text.splitlines():
            key, *rest = line.split()
            if key != line_key:
                continue
            if field_key == key:
                return int(rest[0])
            return int(dict(f.split("=", 1) for f in rest)[field_key])
    except (ValueError, KeyError, IndexError):
        pass
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def usage_usec(group: Path) -> int | None:
    return field_of(_read(group / "cpu.stat"), "usage_usec", "usage_usec")


def groups(nodes: Mapping[str, Path], units: Iterable[str] = WATCHED) -> dict[Label, Path]:
    """Each node's cgroup v2 group, and the groups of `units` on it (`system.slice/<unit>.service`, under `payload/`
    where systemd-nspawn keeps the container's own tree)."""
    out: dict[Label, Path] = {}
    for node, group in nodes.items():
        if usage_usec(group) is None:
            continue
        out[(node, NODE)] = group
        for unit in units:
            for slice_ in (group / "payload" / "system.slice", group / "system.slice"):
                if (slice_ / f"{unit}.service").is_dir():
                    out[(node, unit)] = slice_ / f"{unit}.service"
                    break
    return out


class Reader:
    """The watched groups' `cpu.stat` and `cpu.pressure`, opened once and re-read from the start for each snapshot
    (a tenth of what opening them each time costs). Close it when done."""

    def __init__(self, watched: Mapping[Label, Path]) -> None:
        self.fds: dict[tuple[Label, str], int] = {}
        for label, group in watched.items():
            for name in ("cpu.stat", "cpu.pressure"):
                try:
                    self.fds[(label, name)] = os.open(group / name, os.O_RDONLY)
                except OSError:
                    continue  # no pressure figures on this kernel

    def snapshot(self, at: float) -> Snapshot:
        usage: dict[Label, int] = {}
        waits: dict[Label, int] = {}
        for (label, name), fd in self.fds.items():
            try:
                text = os.pread(fd, 4096, 0).decode()
            except OSError:
                continue
            if name == "cpu.stat" and (u := field_of(text, "usage_usec", "usage_usec")) is not None:
                usage[label] = u
            elif name == "cpu.pressure" and (u := field_of(text, "some", "total")) is not None:
                waits[label] = u
        return Snapshot(at, usage, waits)

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


def snapshot(at: float, watched: Mapping[Label, Path]) -> Snapshot:
    reader = Reader(watched)
    try:
        return reader.snapshot(at)
    finally:
        reader.close()


def window(before: Snapshot, after: Snapshot, cpus: int, cost: float = 0.0) -> Window:
    """CPU per group between two snapshots (a group missing from either counts for nothing)."""
    w = Window(seconds=after.at - before.at, cpus=cpus, cost=cost)
    for label, u in after.usage.items():
        if label in before.usage and u >= before.usage[label]:
            w.used[label] = (u - before.usage[label]) / 1e6
    for label, u in after.waits.items():
        if label in before.waits and u >= before.waits[label]:
            w.waited[label] = (u - before.waits[label]) / 1e6
    return w


def bracket(snaps: Sequence[Snapshot], start: float, end: float) -> tuple[Snapshot, Snapshot] | None:
    """The last snapshot at or before `start` and the first at or after `end`: the shortest window holding both."""
    before = [s for s in snaps if s.at <= start]
    after = [s for s in snaps if s.at >= end]
    if not before or not after or end < start:
        return None
    return before[-1], after[0]


def unified(candidates: Iterable[Path]) -> Path | None:
    """Of a node's groups (one per hierarchy systemd tracks units in), the cgroup v2 one: it has `cpu.stat`."""
    return next((g for g in candidates if usage_usec(g) is not None), None)


def node_groups(names: Iterable[str], groups_of: Callable[[str], list[Path]]) -> dict[str, Path]:
    """Each running node's cgroup v2 group (`groups_of`: the lab's `containers.groups`)."""
    found = {name: unified(groups_of(name)) for name in names}
    return {name: g for name, g in found.items() if g is not None}
