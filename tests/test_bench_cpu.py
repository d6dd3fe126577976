"""The CPU accounting of the failover bench, no lab: a fake /proc with threads that run, are born and exit."""

from pathlib import Path

import pytest

from bench.cpu import Snapshot, host_jiffies, measure, node_of, snapshot, window

LAB = "ha-lb-1234"
NODES = ["lab1", "lab2", "lab10"]


def fake_proc(root: Path, threads: dict[tuple[int, int], int], cgroups: dict[int, str], busy: int, idle: int) -> None:
    """/proc with `threads` ((pid, tid) -> ns on a CPU) and a `cpu` line of `busy` user and `idle` idle jiffies."""
    for (pid, tid), ns in threads.items():
        task = root / str(pid) / "task" / str(tid)
        task.mkdir(parents=True, exist_ok=True)
        (task / "schedstat").write_text(f"{ns} 0 1\n")
        (root / str(pid) / "comm").write_text(f"cmd{pid}\n")
        (root / str(pid) / "cgroup").write_text(cgroups.get(pid, "0::/init.scope\n"))
    (root / "stat").write_text(f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 1 0 0 1 0 0 0 0 0 0\n")


def test_host_busy_share_leaves_out_idle_and_iowait() -> None:
    assert host_jiffies("cpu  60 10 30 800 100 0 0 0 0 0\n") == (100, 1000)


def test_a_process_belongs_to_the_node_whose_group_it_is_in() -> None:
    group = f"0::/user.slice/bench/{LAB}/lab10/system.slice/corosync.service\n1:name=systemd:/x/{LAB}/lab10/y\n"
    assert node_of(group, LAB, NODES) == "lab10"  # not lab1, whose name it starts with
    assert node_of(f"0::/x/{LAB}/lab1\n", LAB, NODES) == "lab1"
    assert node_of("0::/user.slice/lab1/x\n", LAB, NODES) == "host"  # a group named like a node, outside the lab


def test_a_window_counts_what_each_thread_ran_in_it(tmp_path: Path) -> None:
    corosync = f"0::/{LAB}/lab2/system.slice/corosync.service\n"
    fake_proc(tmp_path, {(10, 10): 1_000_000_000, (10, 11): 0, (20, 20): 5_000_000}, {10: corosync}, 100, 900)
    before = snapshot(0.0, tmp_path)
    # pid 10's two threads ran 0.3 s and 0.1 s; pid 20 ran nothing more, pid 30 was born and ran 0.05 s.
    threads = {(10, 10): 1_300_000_000, (10, 11): 100_000_000, (20, 20): 5_000_000, (30, 30): 50_000_000}
    fake_proc(tmp_path, threads, {10: corosync}, 150, 950)
    after = snapshot(0.5, tmp_path)
    w = measure(before, after, LAB, NODES, tmp_path)
    assert w.seconds == 0.5
    assert w.host_busy == pytest.approx(0.5)  # 50 of 100 jiffies
    assert w.by_process == {("lab2", "cmd10"): pytest.approx(0.4), ("host", "cmd30"): pytest.approx(0.05)}


def test_the_host_time_no_live_process_accounts_for_is_counted_as_exited() -> None:
    before = Snapshot(0.0, {(1, 1): 0}, host_busy=0, host_total=0)
    after = Snapshot(1.0, {(1, 1): 200_000_000}, host_busy=60, host_total=100)
    w = window(before, after, {1: ("lab1", "corosync")}, cpus=2)
    # 60% of 2 CPUs for 1 s is 1.2 CPU seconds; the live processes account for 0.2.
    assert w.exited == pytest.approx(1.0)
    assert [(c, round(s, 6)) for c, s in w.top()] == [("corosync", 0.2), ("(exited in the window)", 1.0)]


def test_top_adds_a_command_up_over_every_node() -> None:
    before = Snapshot(0.0, {}, 0, 0)
    after = Snapshot(0.5, {(1, 1): 100_000_000, (2, 2): 200_000_000, (3, 3): 50_000_000}, 0, 0)
    labels = {1: ("lab1", "corosync"), 2: ("lab2", "corosync"), 3: ("lab1", "pacemaker-based")}
    top = window(before, after, labels, cpus=2).top()
    assert [(c, round(s, 6)) for c, s in top[:2]] == [("corosync", 0.6), ("pacemaker-based", 0.1)]
