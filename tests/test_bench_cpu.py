"""The CPU accounting of the failover bench, no lab: fake cgroup trees and /proc/stat."""

from pathlib import Path

import pytest

from bench.cpu import NODE, OTHER, OUTSIDE, Snapshot, groups, host_jiffies, node_groups, snapshot, window


def cpu_stat(group: Path, usec: int, waited: int = 0) -> None:
    group.mkdir(parents=True, exist_ok=True)
    (group / "cpu.stat").write_text(f"usage_usec {usec}\nuser_usec {usec // 2}\nsystem_usec {usec // 2}\n")
    some = f"some avg10=1.00 avg60=0.50 avg300=0.10 total={waited}\n"
    (group / "cpu.pressure").write_text(some + "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")


def proc_stat(proc: Path, busy: int, idle: int) -> None:
    proc.mkdir(exist_ok=True)
    (proc / "stat").write_text(f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 1 0 0 1 0 0 0 0 0 0\n")


def test_host_busy_share_leaves_out_idle_and_iowait() -> None:
    assert host_jiffies("cpu  60 10 30 800 100 0 0 0 0 0\n") == (100, 1000)


def test_a_node_is_read_in_the_hierarchy_that_counts_cpu(tmp_path: Path) -> None:
    v1, v2 = tmp_path / "systemd/lab/lab1", tmp_path / "unified/lab/lab1"
    v1.mkdir(parents=True)  # the named v1 hierarchy: no cpu.stat
    cpu_stat(v2, 5)
    assert node_groups(["lab1", "lab2"], lambda name: [v1, v2] if name == "lab1" else []) == {"lab1": v2}


def test_each_node_and_each_service_on_it_is_watched(tmp_path: Path) -> None:
    node = tmp_path / "lab1"
    cpu_stat(node, 10)
    cpu_stat(node / "payload/system.slice/corosync.service", 4)  # systemd-nspawn: the container's tree
    cpu_stat(node / "system.slice/pacemaker.service", 3)
    (node / "payload/system.slice/dbus.socket").mkdir()  # not a service
    assert sorted(groups({"lab1": node, "gone": tmp_path / "gone"})) == [
        ("lab1", NODE),
        ("lab1", "corosync"),
        ("lab1", "pacemaker"),
    ]


def test_a_window_counts_what_each_group_ran_in_it(tmp_path: Path) -> None:
    nodes = {name: tmp_path / name for name in ("lab1", "lab2")}
    for node in nodes.values():
        cpu_stat(node, 1_000_000, waited=7_000_000)
        cpu_stat(node / "payload/system.slice/corosync.service", 500_000, waited=2_000_000)
    proc_stat(tmp_path / "proc", 100, 900)
    watched = groups(nodes)
    before = snapshot(0.0, watched, tmp_path / "proc")
    # lab1: corosync 0.3 s, 0.1 s in other units (an agent's forks, gone since: its group still counts them);
    # lab2 killed meanwhile (its groups gone). The host was busy for 50 of 100 jiffies: 1.0 s of 2 CPUs in 1 s.
    cpu_stat(nodes["lab1"], 1_400_000, waited=7_250_000)
    cpu_stat(nodes["lab1"] / "payload/system.slice/corosync.service", 800_000, waited=2_040_000)
    for f in nodes["lab2"].rglob("cpu.*"):
        f.unlink()
    proc_stat(tmp_path / "proc", 150, 950)
    w = window(before, snapshot(1.0, watched, tmp_path / "proc"), cpus=2)
    assert w.host_busy == pytest.approx(0.5)
    assert w.used == {("lab1", NODE): pytest.approx(0.4), ("lab1", "corosync"): pytest.approx(0.3)}
    assert w.waited == {("lab1", NODE): pytest.approx(0.25), ("lab1", "corosync"): pytest.approx(0.04)}
    assert [(u, round(s, 6)) for u, s in w.top()] == [("corosync", 0.3), (OTHER, 0.1), (OUTSIDE, 0.6)]


def test_top_adds_a_unit_up_over_every_node() -> None:
    usage = {("lab1", NODE): 0, ("lab1", "corosync"): 0, ("lab2", NODE): 0, ("lab2", "corosync"): 0}
    before = Snapshot(0.0, usage, {}, 0, 100)
    after = Snapshot(
        0.5,
        {
            ("lab1", NODE): 150_000,
            ("lab1", "corosync"): 100_000,
            ("lab2", NODE): 200_000,
            ("lab2", "corosync"): 200_000,
        },
        {},
        35,
        200,
    )
    top = window(before, after, cpus=2).top()
    # 35% of 2 CPUs for 0.5 s = 0.35 s, the nodes 0.35 s: nothing outside them.
    assert [(u, round(s, 6)) for u, s in top] == [("corosync", 0.6), (OTHER, 0.1), (OUTSIDE, 0.0)]
