"""Where the lab puts each node's cgroup: found from mountinfo and /proc/self/cgroup, as on hybrid and pure v2 hosts."""

import subprocess
from pathlib import Path

from lab import cgroups

HYBRID_MOUNTS = """\
35 25 0:30 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
36 35 0:31 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
37 35 0:32 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
38 35 0:33 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
"""
HYBRID_CGROUP = """\
9:name=systemd:/user.slice/session-3.scope
4:memory:/user.slice
0::/user.slice/session-3.scope
"""


def test_hybrid_host_has_the_named_systemd_and_the_unified_hierarchy() -> None:
    assert cgroups.systemd_hierarchies(HYBRID_MOUNTS, HYBRID_CGROUP) == [
        Path("/sys/fs/cgroup/unified/user.slice/session-3.scope"),
        Path("/sys/fs/cgroup/systemd/user.slice/session-3.scope"),
    ]


def test_pure_v2_host_has_one_hierarchy_and_a_namespaced_root_is_stripped() -> None:
    mounts = "29 23 0:26 /ci.slice /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
    assert cgroups.systemd_hierarchies(mounts, "0::/ci.slice/job-7.scope\n") == [Path("/sys/fs/cgroup/job-7.scope")]


def test_a_controller_hierarchy_is_not_one_systemd_tracks_units_in() -> None:
    mounts = "38 35 0:33 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    assert cgroups.systemd_hierarchies(mounts, "4:memory:/x\n") == []


def test_entering_runs_the_command_inside_every_group(tmp_path: Path) -> None:
    # Plain directories stand in for cgroupfs: the shell writes its own pid to each group's cgroup.procs, then execs.
    groups = [tmp_path / "unified" / "lab" / "n1", tmp_path / "systemd" / "lab" / "n1"]
    done = subprocess.run(cgroups.entering(groups, ["sh", "-c", "echo $$"]), capture_output=True, text=True, check=True)
    pid = done.stdout.strip()
    assert [(g / "cgroup.procs").read_text().strip() for g in groups] == [pid, pid]
