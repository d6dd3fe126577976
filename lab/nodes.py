"""Lab nodes: systemd-nspawn containers booting the node image, on a bridge in the lab's own network namespace.

Each node gets what the program gave its VM: an overlay on the rootfs (its disk), the program's NoCloud seed
(user-data, meta-data, network-config: cloud-init does the rest), and a NIC with the program's MAC on the bridge;
and what the VM's image would carry: an APT source, the lab's repository in place of a Debian mirror.
Every process the lab starts is recorded by pid and stopped by pid.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from procs.runner import Runner, run

from . import cgroups

BRIDGE = "br0"
CAPABILITIES = "CAP_NET_ADMIN,CAP_NET_RAW,CAP_SYS_NICE,CAP_IPC_LOCK"

# The nspawns this process started, by pid, to reap: shared by every `Containers` of the process (a lab's `up` with a
# bigger stack starts a node that the next `up`, with the smaller one, stops).
_children: dict[int, subprocess.Popen[bytes]] = {}


def netns_for(state_dir: Path) -> str:
    """The lab's network namespace: one per lab directory, so labs (a developer's, the tests') never meet."""
    return f"ha-lb-{hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:8]}"


def in_netns(netns: str, argv: list[str]) -> list[str]:
    """argv run inside a lab's network namespace (nsenter: `ip netns exec` would remount /sys)."""
    return ["nsenter", f"--net=/run/netns/{netns}", *argv]


def alive(pid: int) -> bool:
    """Running and not yet a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def terminate(pid: int, timeout: float = 5) -> None:
    """Stop a daemon the lab started, by pid: SIGTERM, then SIGKILL if it is still there at the deadline."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)


class LabNetwork:
    """The lab's network namespace with a bridge; the driver's address (the stack's gateway) is on the bridge."""

    def __init__(self, netns: str, gateway_cidr: str, runner: Runner = run) -> None:
        self.netns = netns
        self.gateway_cidr = gateway_cidr
        self.run = runner

    @property
    def bridge_mac(self) -> str:
        """Fixed for the lab (its namespace's name), locally administered: never a node's 52:54:00 MAC."""
        h = hashlib.sha256(self.netns.encode()).digest()
        return "02:" + ":".join(f"{b:02x}" for b in h[:5])

    def exists(self) -> bool:
        return Path(f"/run/netns/{self.netns}").exists()

    def up(self) -> None:
        if not self.exists():
            self._must(["ip", "netns", "add", self.netns])
        ns = ["ip", "-n", self.netns]
        self._must([*ns, "link", "set", "lo", "up"])
        if not self.run([*ns, "link", "show", BRIDGE]).ok:
            self._must([*ns, "link", "add", BRIDGE, "type", "bridge", "forward_delay", "0", "stp_state", "0"])
        # A MAC of its own, as libvirt gives its bridges: a bridge without one takes its lowest port's, so a node's
        # port going away (its VM replaced) changed the gateway's MAC under the other nodes, whose answers then
        # went to the old one until their neighbour entry expired: a 2.6-2.9 s outage in the e2e that no VM sees.
        self._must([*ns, "link", "set", BRIDGE, "address", self.bridge_mac])
        if self.gateway_cidr.split("/")[0] not in self.run([*ns, "-brief", "addr", "show", BRIDGE]).stdout:
            self._must([*ns, "addr", "add", self.gateway_cidr, "dev", BRIDGE])
        self._must([*ns, "link", "set", BRIDGE, "up"])

    def down(self) -> None:
        if self.exists():
            self._must(["ip", "netns", "del", self.netns])

    def _must(self, argv: list[str]) -> None:
        done = self.run(argv)
        if not done.ok:
            raise RuntimeError(f"{' '.join(argv)}: {done.tail()}")


@dataclass(frozen=True)
class NodeSeed:
    """What the program gave a VM, as the lab realizes it."""

    name: str
    mac: str
    user_data: str
    meta_data: str
    network_config: str


class Containers:
    """Node containers under `state_dir/nodes/<name>`: disk (overlay upper dir), seed, console log, pid."""

    def __init__(self, state_dir: Path, netns: str, runner: Runner = run) -> None:
        self.dir = state_dir / "nodes"
        self.netns = netns
        self.run = runner

    def node_dir(self, name: str) -> Path:
        return self.dir / name

    def groups(self, name: str | None = None) -> list[Path]:
        """The node's cgroups (the lab's, without a name): one per hierarchy systemd tracks units in."""
        return [h / self.netns / name if name else h / self.netns for h in cgroups.own_hierarchies()]

    def nspawn_pid(self, name: str) -> int | None:
        pid_file = self.node_dir(name) / "nspawn.pid"
        if not pid_file.exists():
            return None
        pid = int(pid_file.read_text())
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            return None
        if not alive(pid):
            return None
        # A pid recorded by this lab, still the nspawn it started (pids get reused).
        return pid if b"systemd-nspawn" in cmdline and f"ha-lb-{name}".encode() in cmdline else None

    def init_pid(self, name: str) -> int | None:
        """The container's init: the child of our nspawn."""
        pid = self.nspawn_pid(name)
        if pid is None:
            return None
        children = Path(f"/proc/{pid}/task/{pid}/children")
        kids = children.read_text().split() if children.exists() else []
        return int(kids[0]) if kids else None

    def is_running(self, name: str) -> bool:
        return self.nspawn_pid(name) is not None

    def start(self, rootfs: Path, seed: NodeSeed, fresh_disk: bool = False, apt_source: str | None = None) -> None:
        """Boot the node; its disk (overlay upper dir) persists across restarts unless `fresh_disk`. `apt_source`:
        the node's APT source (the lab's repository), as a VM's image points at a Debian mirror."""
        d = self.node_dir(seed.name)
        root = d / "root"
        self._unmount(root)
        for group in self.groups(seed.name):
            cgroups.remove(group)  # what a killed run of this node left
        if fresh_disk:
            self.run(["rm", "-rf", str(d / "upper"), str(d / "work")])
        for sub in ("upper", "work", "root"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        opts = f"lowerdir={rootfs},upperdir={d / 'upper'},workdir={d / 'work'}"
        self._must(["mount", "-t", "overlay", "overlay", "-o", opts, str(root)])
        seed_dir = root / "var/lib/cloud/seed/nocloud"
        seed_dir.mkdir(parents=True, exist_ok=True)
        (seed_dir / "user-data").write_text(seed.user_data)
        (seed_dir / "meta-data").write_text(seed.meta_data)
        (seed_dir / "network-config").write_text(seed.network_config)
        if apt_source is not None:
            (root / "etc/apt/sources.list").write_text(apt_source)
        # The hypervisor's part: the NIC carries the MAC the program gave the VM, before cloud-init looks for it.
        unit = root / "etc/systemd/system/ha-lb-lab-nic.service"
        unit.write_text(
            "[Unit]\nDescription=ha-lb lab: the NIC takes the MAC the program gave this node's VM\n"
            "DefaultDependencies=no\nBefore=cloud-init-local.service network-pre.target\nWants=network-pre.target\n"
            f"[Service]\nType=oneshot\nExecStart=/sbin/ip link set host0 address {seed.mac}\n"
        )
        wants = root / "etc/systemd/system/sysinit.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        (wants / unit.name).unlink(missing_ok=True)
        (wants / unit.name).symlink_to(f"/etc/systemd/system/{unit.name}")
        nspawn = ["systemd-nspawn", "-q", "-b", "-M", f"ha-lb-{seed.name}", "-D", str(root)]
        # Without a system bus here: no machined registration, and the container stays in our own unit.
        nspawn += ["--register=no", "--keep-unit", f"--network-bridge={BRIDGE}", f"--capability={CAPABILITIES}"]
        console = open(d / "console.log", "ab")  # noqa: SIM115 - handed to the container process
        proc = subprocess.Popen(
            cgroups.entering(self.groups(seed.name), in_netns(self.netns, nspawn)),
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        console.close()
        _children[proc.pid] = proc
        # Written whole, then renamed: other threads (a VIP watch) read it while a node starts.
        (d / "nspawn.pid.new").write_text(str(proc.pid))
        os.replace(d / "nspawn.pid.new", d / "nspawn.pid")

    def kill(self, name: str, timeout: float = 10) -> None:
        """Hard-kill the node (SIGKILL of its init: its network namespace dies with it), then reap nspawn."""
        init = self.init_pid(name)
        pid = self.nspawn_pid(name)
        if init is not None:
            os.kill(init, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while pid is not None and self.nspawn_pid(name) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid is not None and self.nspawn_pid(name) is not None:
            os.kill(pid, signal.SIGKILL)
        child = _children.pop(pid, None) if pid is not None else None
        if child is not None:
            child.wait(timeout)

    def stop(self, name: str) -> None:
        self.kill(name)
        for group in self.groups(name):
            cgroups.remove(group)
        self._unmount(self.node_dir(name) / "root")
        (self.node_dir(name) / "nspawn.pid").unlink(missing_ok=True)

    def remove_groups(self) -> None:
        """The lab's cgroups, once every node is stopped."""
        for group in self.groups():
            cgroups.remove(group)

    def console_tail(self, name: str, lines: int = 25) -> str:
        log = self.node_dir(name) / "console.log"
        text = log.read_bytes().decode(errors="replace") if log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def names(self) -> list[str]:
        return sorted(p.name for p in self.dir.iterdir()) if self.dir.exists() else []

    def _unmount(self, root: Path, timeout: float = 15) -> None:
        """Unmount a node's disk; right after a kill nspawn may hold it a moment longer: retry to a deadline."""
        deadline = time.monotonic() + timeout
        while root.exists() and self.run(["mountpoint", "-q", str(root)]).ok:
            done = self.run(["umount", str(root)])
            if done.ok:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"umount {root}: {done.tail()}")
            time.sleep(0.2)

    def _must(self, argv: list[str]) -> None:
        done = self.run(argv)
        if not done.ok:
            raise RuntimeError(f"{' '.join(argv)}: {done.tail()}")
