"""The CPU accounting of the failover bench, no lab: fake cgroup trees, and the kill loop with the lab's calls faked."""

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench import failover
from bench.cpu import NODE, OTHER, Reader, Snapshot, bracket, groups, node_groups, snapshot, window
from lab import operations as ops
from lab.probe import Outage, Sample


def cgroup(group: Path, usec: int, waited: int | None = 0) -> None:
    """A cgroup v2 group's CPU files (`waited` None: a kernel that keeps no pressure figures)."""
    group.mkdir(parents=True, exist_ok=True)
    (group / "cpu.stat").write_text(f"usage_usec {usec}\nuser_usec {usec // 2}\nsystem_usec {usec // 2}\n")
    if waited is not None:
        some = f"some avg10=1.00 avg60=0.50 avg300=0.10 total={waited}\n"
        (group / "cpu.pressure").write_text(some + "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")


def test_a_node_is_read_in_the_hierarchy_that_counts_cpu(tmp_path: Path) -> None:
    v1, v2 = tmp_path / "systemd/lab/lab1", tmp_path / "unified/lab/lab1"
    v1.mkdir(parents=True)  # the named v1 hierarchy: no cpu.stat
    cgroup(v2, 5)
    assert node_groups(["lab1", "lab2"], lambda name: [v1, v2] if name == "lab1" else []) == {"lab1": v2}


def test_the_node_and_the_services_on_the_path_are_watched(tmp_path: Path) -> None:
    node = tmp_path / "lab1"
    cgroup(node, 10)
    cgroup(node / "payload/system.slice/corosync.service", 4)  # systemd-nspawn: the container's own tree
    cgroup(node / "system.slice/pacemaker.service", 3)
    cgroup(node / "payload/system.slice/pcsd.service", 3)  # not on the path
    assert groups({"lab1": node, "gone": tmp_path / "gone"}) == {
        ("lab1", NODE): node,
        ("lab1", "corosync"): node / "payload/system.slice/corosync.service",
        ("lab1", "pacemaker"): node / "system.slice/pacemaker.service",
    }


def test_a_window_counts_what_each_group_ran_and_waited_in_it(tmp_path: Path) -> None:
    nodes = {name: tmp_path / name for name in ("lab1", "lab2")}
    for node in nodes.values():
        cgroup(node, 1_000_000, waited=7_000_000)
        cgroup(node / "payload/system.slice/corosync.service", 500_000, waited=2_000_000)
    watched = groups(nodes)
    before = snapshot(0.0, watched)
    # lab1: corosync 0.3 s, 0.1 s in other processes (an agent's forks, gone since: its group still counts them);
    # lab2 killed meanwhile: its group stays, and counts nothing more.
    cgroup(nodes["lab1"], 1_400_000, waited=7_250_000)
    cgroup(nodes["lab1"] / "payload/system.slice/corosync.service", 800_000, waited=2_040_000)
    w = window(before, snapshot(0.5, watched), cpus=2)
    assert w.used[("lab1", NODE)] == pytest.approx(0.4)
    assert w.used[("lab1", "corosync")] == pytest.approx(0.3)
    assert w.used[("lab2", NODE)] == 0
    assert w.waited[("lab1", NODE)] == pytest.approx(0.25)
    assert w.waited[("lab1", "corosync")] == pytest.approx(0.04)
    assert w.nodes_share == pytest.approx(0.4)  # 0.4 CPU seconds of 2 cores x 0.5 s
    assert [(u, round(s, 6)) for u, s in w.top()] == [("corosync", 0.6), (OTHER, 0.2)]


def test_without_pressure_figures_nothing_is_said_to_have_waited(tmp_path: Path) -> None:
    node = tmp_path / "lab1"
    cgroup(node, 0, waited=None)
    watched = groups({"lab1": node})
    before = snapshot(0.0, watched)
    cgroup(node, 100_000, waited=None)
    w = window(before, snapshot(1.0, watched), cpus=2)
    assert w.used == {("lab1", NODE): pytest.approx(0.1)}
    assert w.waited == {}
    report = failover.cpu_report(w, dc="lab1", survivor=None)
    assert report["waited"] == {"pacemaker on the DC lab1": None}  # unknown, not 0
    assert "Pacemaker on the DC" not in failover.cpu_summary([report])


def test_the_window_is_cut_at_the_snapshots_around_its_ends() -> None:
    snaps = [Snapshot(t, {}, {}) for t in (0.0, 0.025, 0.05, 0.075, 0.1)]
    pair = bracket(snaps, 0.03, 0.06)
    assert pair is not None and (pair[0].at, pair[1].at) == (0.025, 0.075)
    assert bracket(snaps, 0.03, 0.2) is None  # the VIP started after the last snapshot
    assert bracket(snaps, -0.1, 0.05) is None  # lost before the first


def test_the_summary_gives_medians_and_ranges_over_the_kills() -> None:
    windows = [
        {"nodes_share": share, "waited": {"pacemaker on the DC lab2": dc, "pacemaker on the VIP's new node lab1": new}}
        for share, dc, new in ((0.6, 0.040, 0.060), (0.7, 0.020, 0.090), (0.5, 0.050, 0.070))
    ]
    assert failover.cpu_summary(windows) == (
        "the nodes used 60% (50-70) of the cores, Pacemaker on the DC waited 40 ms (20-50) for a CPU, "
        "Pacemaker on the VIP's new node waited 70 ms (60-90) for a CPU"
    )


def test_keepalived_kills_ask_pacemaker_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """With Pacemaker stopped there is no DC and no cluster journal: a keepalived kill must not ask for them."""
    killed: list[str] = []
    ctx: Any = SimpleNamespace(lab=SimpleNamespace(containers=SimpleNamespace(kill=killed.append)))

    def measure_outage(_ctx: object, act: Any) -> tuple[Outage, list[Sample], float]:
        act()
        return Outage(10.0, 12.5), [Sample(9.9, 10.0, True), Sample(12.4, 12.5, True)], 10.0

    def no_pacemaker(*_: object) -> None:
        raise AssertionError("asked Pacemaker")

    monkeypatch.setattr(ops, "measure_outage", measure_outage)
    monkeypatch.setattr(ops, "dc_node", no_pacemaker)
    monkeypatch.setattr(ops, "vip_node", lambda _ctx: "lab2")
    monkeypatch.setattr(failover, "journal", no_pacemaker)
    monkeypatch.setattr(failover, "reboot_dead_nodes", lambda _ctx: None)
    result = failover.Result("keepalived")
    failover.kill_runs(ctx, result, 2, lambda: "lab1", lambda _node: None, pacemaker=False, cpu_watch=True)
    assert killed == ["lab1", "lab1"]
    assert result.outages == [2.5, 2.5]
    assert result.detections == [] and result.killed_dc == [] and result.cpu_windows == []


def test_one_reader_sees_each_new_figure_through_the_descriptors_it_opened(tmp_path: Path) -> None:
    node = tmp_path / "lab1"
    cgroup(node, 1_000, waited=10)
    reader = Reader(groups({"lab1": node}))
    try:
        first = reader.snapshot(0.0)
        cgroup(node, 5_000, waited=30)  # the same files, new figures (cgroupfs regenerates them on each read)
        second = reader.snapshot(0.1)
    finally:
        reader.close()
    assert (first.usage, first.waits) == ({("lab1", NODE): 1_000}, {("lab1", NODE): 10})
    assert (second.usage, second.waits) == ({("lab1", NODE): 5_000}, {("lab1", NODE): 30})
    assert reader.fds == {}


def test_a_pacemaker_kill_counts_re_formations_before_it_and_keeps_the_journals(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The survivor's journal from 30 s before the kill: memberships with nobody joining or leaving, logged before
    the kill, count as the ring re-forming with nobody lost (not the last kill's node rejoining, nor this kill's
    loss); the survivor's and the DC's journals are kept, the dead node's is not asked for."""
    at = time.time()

    def line(offset: float, text: str) -> str:
        stamp = time.strftime("%b %d %H:%M:%S", time.localtime(at + offset))
        return f"{stamp}.{int((at + offset) % 1 * 1e6):06d} {text}"

    journals = {
        "lab2": [
            line(-20, "corosync[1]: [QUORUM] Sync members[3]: 1 2 3"),
            line(-20, "corosync[1]: [TOTEM ] A new membership (1.10) was formed. Members joined: 1"),
            line(-6, "corosync[1]: [TOTEM ] A new membership (1.12) was formed. Members"),
            line(-5, "corosync[1]: [TOTEM ] A new membership (1.14) was formed. Members"),
            line(0.9, "corosync[1]: [TOTEM ] A new membership (1.18) was formed. Members left: 1"),
            line(0.95, "pacemaker-controld[2]: notice: Node lab1 state is now lost"),
            line(1.0, "corosync[1]: [TOTEM ] A new membership (1.1c) was formed. Members"),
            line(1.1, "pacemaker-controld[2]: notice: Result of start operation for vip on lab2: ok"),
        ],
        "lab3": [line(1.0, "pacemaker-controld[2]: the DC's line")],
    }
    asked: list[str] = []

    def journal(_ctx: object, node: str, since: float) -> list[str]:
        asked.append(node)
        assert since == at - failover.JOURNAL_BEFORE_S
        return journals[node]

    def measure_outage(_ctx: object, act: Any) -> tuple[Outage, list[Sample], float]:
        act()
        return Outage(at, at + 1.2), [Sample(at - 0.01, at, True), Sample(at + 1.19, at + 1.2, True)], at

    ctx: Any = SimpleNamespace(lab=SimpleNamespace(containers=SimpleNamespace(kill=lambda _node: None)))
    monkeypatch.setattr(ops, "measure_outage", measure_outage)
    monkeypatch.setattr(ops, "dc_node", lambda _ctx: "lab3")
    monkeypatch.setattr(ops, "vip_node", lambda _ctx: "lab2")
    monkeypatch.setattr(failover, "journal", journal)
    monkeypatch.setattr(failover, "reboot_dead_nodes", lambda _ctx: None)
    result = failover.Result("fast profile")
    failover.kill_runs(ctx, result, 1, lambda: "lab1", lambda _node: None, journals=tmp_path)
    assert result.reformed_before == [2]
    assert result.detections == [0.95] and result.killed_dc == [False]
    assert sorted(asked) == ["lab2", "lab3"]
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == ["fast-profile-kill1-lab2.log", "fast-profile-kill1-lab3.log"]
    assert "the DC's line" in (tmp_path / "fast-profile-kill1-lab3.log").read_text()
