"""A cgroup of its own for every lab node.

systemd-nspawn with `--register=no --keep-unit` puts the container under the caller's cgroup, in fixed `payload` and
`supervisor` sub-groups. Two nodes started by one process would then share one tree: every node's systemd would keep
its `ssh.service`, `corosync.service`, ... in the very same cgroups as the others', and a unit stopped or restarted
on one node (cloud-init restarts sshd) acts on what it finds there. So each node starts in a group of its own,
`<own cgroup>/<lab>/<node>`, in every hierarchy systemd tracks units in (the named `systemd` v1 hierarchy and the
unified one), as machined would have given it a scope.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def systemd_hierarchies(mountinfo: str, proc_cgroup: str) -> list[Path]:
    """Where this process's cgroup sits in each hierarchy systemd uses (cgroup2, and v1 `name=systemd`)."""
    own: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        hierarchy_id, controllers, path = line.split(":", 2)
        if hierarchy_id == "0" and controllers == "":
            own["cgroup2"] = path
        elif "name=systemd" in controllers.split(","):
            own["name=systemd"] = path
    found = []
    for line in mountinfo.splitlines():
        fields, _, fs = line.partition(" - ")
        root, mount_point = fields.split()[3:5]
        fstype, _source, options = fs.split()[:3]
        key = "cgroup2" if fstype == "cgroup2" else "name=systemd" if "name=systemd" in options.split(",") else None
        if key is None or key not in own or not own[key].startswith(root):
            continue
        inside = own[key][len(root) :].lstrip("/")
        found.append(Path(mount_point.replace("\\040", " ")) / inside)
    return found


def own_hierarchies() -> list[Path]:
    return systemd_hierarchies(Path("/proc/self/mountinfo").read_text(), Path("/proc/self/cgroup").read_text())


def entering(groups: list[Path], argv: list[str]) -> list[str]:
    """argv run from inside `groups` (created if missing): the shell moves itself there, then execs argv."""
    script = 'set -e; IFS=:; for g in $0; do mkdir -p "$g"; echo $$ > "$g/cgroup.procs"; done; exec "$@"'
    return ["sh", "-c", script, ":".join(str(g) for g in groups), *argv]


def processes(group: Path) -> list[int]:
    """Every process in a group and its sub-groups."""
    if not group.is_dir():
        return []
    return [int(pid) for procs in group.rglob("cgroup.procs") for pid in procs.read_text().split()]


def remove(group: Path, timeout: float = 10) -> None:
    """Kill whatever is left in a node's group (all of it the lab's: the node's processes), then remove it."""
    deadline = time.monotonic() + timeout
    while (left := processes(group)) and time.monotonic() < deadline:
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    if not group.is_dir():
        return
    # Deepest first: a cgroup is removed with rmdir, and only once it has no sub-groups.
    for sub in [*sorted((p for p in group.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)), group]:
        with contextlib.suppress(FileNotFoundError):
            sub.rmdir()
