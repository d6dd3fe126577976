"""A BMC per lab node: IPMI over LAN (lanplus: IPMI 2.0, RMCP+), so the cluster fences lab nodes with Debian's real
`fence_ipmilan` and nothing in the cluster knows it is a lab.

`NodeBmc` (`node_bmc`) is pyghmi's `Bmc` (what OpenStack's virtualbmc subclasses to give libvirt domains a BMC) over
a `PowerSwitch` of three callables: power on, power off, is on. Each BMC runs as a process of its own inside the lab's
network namespace, listening on an address of its own on the lab bridge, port 623: as a real BMC has its own NIC and
address, the fence device's `ip` is that address and no `ipport` is needed; the BMC lives outside its node, so it
outlives it.

How a BMC acts on its node: it runs a command (`--control`) with `on`, `off` or `status` appended. For a lab node
that command is `python -m lab.bmc power --state-dir D NODE`, which does what the lab does, with the lab's own code
(`Containers`): off kills the node's container (SIGKILL of its init, as `Containers.kill`: the hard kill the lab's
failover uses), on boots it from its disk with the seed the lab recorded (`lab_power_control`), status is whether
its container runs. Why a command and not the lab's code inside the BMC, or a socket to a lab-side thread: the lab's
commands (`up`, `failover`, ...) are short-lived processes, so nothing lab-side lives long enough to serve a socket;
a command run per action sees the lab's state as it is on disk at that moment (what any lab command sees), keeps
pyghmi's single IPMI loop free of the lab's code, and a test gives the BMC a fake power switch by naming another
command. Power actions run on a worker thread, one at a time, in order; the IPMI answer waits for the action up to
1.5 s (under ipmitool's retransmit timeout), then goes back anyway, as a real BMC's answers before the power state
changes. Status says off only once the node's container is gone, so `fence_ipmilan` (which polls status until it
sees the state it asked for) reports a node off only when it is; it says on from the moment a power on is asked, as a
machine's chassis is on while its firmware tests it and its OS boots (`POST_SECONDS`, then the container starts).

A hung node (processes alive but silent) is `freeze(node)`: the node's container (its `payload` cgroup) is frozen;
the kernel still answers ARP and TCP handshakes for its addresses. Through the unified (v2) hierarchy where the node
has a group there (`cgroup.freeze`: the whole subtree, atomically; SIGKILL still kills frozen tasks, so every kill
path of the lab works on a frozen node), else through the v1 `freezer` hierarchy, where a frozen task does not die
of SIGKILL until thawed: power off then sends SIGKILL to every process of the node first and thaws them after, so
no process runs a single instruction between being frozen and dying.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import cgroups
from .nodes import BRIDGE, Containers, NodeSeed, alive, in_netns, netns_for, terminate

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORT = 623
POST_SECONDS = 5.0
"""A lab BMC's power on waits this long before the node's container starts: a VM's firmware and boot loader (or a
server's self-test, which takes longer), so a lab node is back no sooner than a VM (`PowerSwitch`)."""

# The BMC processes this process started, by pid, to reap.
_children: dict[int, subprocess.Popen[bytes]] = {}


def _log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


class PowerSwitch:
    """A node's power switch behind its BMC: power actions run on a worker thread, one at a time, in the order asked.
    A power off or cycle waits for its action up to `answer_within` seconds, then answers anyway: under ipmitool's
    2 s retransmit timeout (`fence_ipmilan --ipmitool-timeout`), so a client never sends the request again, while an
    off that ends in time (it takes well under a second) is over when the answer goes back, and the next status
    tells it. A power on answers at once, as a BMC does: the chassis is on from the request, the OS boots after.
    Status is always asked of the switch itself, never of a pending action.

    Power on of a node that is off first waits `post_seconds` (a machine's firmware self-test before its OS boots),
    and from the moment it is asked the chassis reports on, as a real BMC does. Why the lab needs it: a container
    boots to corosync in 2-3 s, a VM or server in 10 s or more; without the wait a node rebooted by its fence could
    be a cluster member again before the fence's result reached the cluster, and its controller would stop for
    having been "allegedly just fenced". A power off asked during that wait cancels the boot."""

    def __init__(
        self,
        name: str,
        power_on: Callable[[], None],
        power_off: Callable[[], None],
        is_on: Callable[[], bool],
        answer_within: float = 1.5,
        post_seconds: float = 0.0,
    ) -> None:
        self.name = name
        self._on = power_on
        self._off = power_off
        self._is_on = is_on
        self.answer_within = answer_within
        self.post_seconds = post_seconds
        self._posting = threading.Event()
        """Set from a power on's request until its OS boots (or a power off cancels it)."""
        self._cancel_boot = threading.Event()
        self._actions: queue.Queue[tuple[str, threading.Event]] = queue.Queue()
        threading.Thread(target=self._work, name=f"bmc-{name}-power", daemon=True).start()

    def is_on(self) -> bool:
        """The chassis power: on while the node runs, and while a power on is in its firmware's self-test."""
        return self._posting.is_set() or self._is_on()

    def request(self, action: str) -> bool:
        """`on`, `off` or `cycle` (off, then on); True if it was done before the answer went back."""
        if action not in ("on", "off", "cycle"):
            raise ValueError(action)
        # Set or cleared here, in the order asked, never by the worker: an off asked right after an on cancels it.
        if action == "off":
            self._cancel_boot.set()
        else:
            self._cancel_boot.clear()
            if action == "on" and not self._is_on():
                self._posting.set()
        done = threading.Event()
        self._actions.put((action, done))
        return done.wait(0 if action == "on" else self.answer_within)

    def _boot(self) -> None:
        self._posting.set()
        try:
            if self._is_on():
                return
            if self._cancel_boot.wait(self.post_seconds):
                _log(f"{self.name}: power on cancelled by a power off during the self-test")
                return
            _log(f"{self.name}: power on (after {self.post_seconds:g} s of self-test)")
            self._on()
        finally:
            self._posting.clear()

    def _work(self) -> None:
        while True:
            action, done = self._actions.get()
            try:
                # Both are safe to repeat: off on a node that is off, on on one that is on, change nothing.
                if action in ("off", "cycle"):
                    _log(f"{self.name}: power off")
                    self._off()
                if action in ("on", "cycle"):
                    self._boot()
            except Exception as err:  # a failed action is logged; status keeps telling the truth
                _log(f"{self.name}: power {action} failed: {err}")
            finally:
                done.set()


def node_bmc(switch: PowerSwitch, user: str, password: str, address: str = "::", port: int = DEFAULT_PORT) -> Any:
    """A `NodeBmc` listening on address:port: pyghmi's `Bmc` over a node's power switch, one user, chassis power
    status/on/off/cycle/reset. pyghmi is imported here, by the BMC process only: the power command, run for every
    status query, starts in 0.15 s instead of 0.4 s without it (most of that is pyghmi's import)."""
    import pyghmi.ipmi.bmc as ipmi_bmc  # type: ignore[import-untyped]

    class NodeBmc(ipmi_bmc.Bmc):  # type: ignore[misc]
        def get_power_state(self) -> int:
            # An error here becomes a failed IPMI request (pyghmi answers 0xff): unknown is never "off".
            return 1 if switch.is_on() else 0

        def power_on(self) -> None:
            switch.request("on")

        def power_off(self) -> None:
            switch.request("off")

        def power_cycle(self) -> None:
            switch.request("cycle")

        def power_reset(self) -> None:
            switch.request("cycle")

        def get_boot_device(self) -> str:
            return "hd"  # a node always boots from its own disk

        def set_boot_device(self, bootdevice: str) -> None:
            _log(f"{switch.name}: boot device {bootdevice} asked for: the node boots from its disk")

        def get_system_guid(self) -> uuid.UUID:
            return uuid.UUID(str(self.uuid))

    # A stable GUID per node, as a machine's BMC has.
    guid = uuid.uuid5(uuid.NAMESPACE_DNS, switch.name)
    return NodeBmc({user: password}, port=port, address=address, bmcuuid=guid)


@dataclass(frozen=True)
class CommandPower:
    """A power switch that is a command: `argv + [on|off|status]`; status prints `on` or `off`."""

    argv: tuple[str, ...]
    timeout: float = 120

    def _run(self, action: str) -> str:
        done = subprocess.run(
            [*self.argv, action], capture_output=True, text=True, timeout=self.timeout, stdin=subprocess.DEVNULL
        )
        if done.returncode != 0:
            raise RuntimeError(f"{shlex.join(self.argv)} {action} exited {done.returncode}: {done.stderr.strip()}")
        return done.stdout.strip()

    def on(self) -> None:
        self._run("on")

    def off(self) -> None:
        self._run("off")

    def is_on(self) -> bool:
        state = self._run("status")
        if state not in ("on", "off"):
            raise RuntimeError(f"{shlex.join(self.argv)} status said {state!r}, not on or off")
        return state == "on"


# --- the lab's side: how a BMC's power switch acts on a lab node ------------------------------------------------


@dataclass(frozen=True)
class Boot:
    """How the lab boots a node: what `Containers.start` takes (its disk is kept: never a fresh one)."""

    rootfs: str
    seed: dict[str, str]
    apt_source: str | None = None


def _boot_file(state_dir: Path, node: str) -> Path:
    return state_dir / "bmc" / f"{node}.boot.json"


def _write_private(path: Path, text: str) -> None:
    """A file only root reads (a seed holds keys, a password file the fence secret)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def lab_power_control(state_dir: Path, rootfs: Path, seed: NodeSeed, apt_source: str | None = None) -> list[str]:
    """The power switch of a lab node, as a `--control` command: records how the node boots (its rootfs, its seed,
    its APT source: call again whenever the lab starts the node with others), returns the command."""
    boot = Boot(str(rootfs), asdict(seed), apt_source)
    _write_private(_boot_file(state_dir.resolve(), seed.name), json.dumps(asdict(boot)))
    return [sys.executable, "-m", "lab.bmc", "power", "--state-dir", str(state_dir.resolve()), seed.name]


def node_power(state_dir: Path, node: str, action: str) -> str:
    """What `python -m lab.bmc power` does: `on`, `off` or `status` of a lab node; returns its state after."""
    containers = Containers(state_dir, netns_for(state_dir))
    if action == "off":
        power_off(containers, node)
    elif action == "on" and not containers.is_running(node):
        if not _boot_file(state_dir, node).exists():
            raise RuntimeError("the lab recorded no boot for this node (lab_power_control)")
        boot = json.loads(_boot_file(state_dir, node).read_text())
        seed = NodeSeed(**boot["seed"])
        containers.start(Path(boot["rootfs"]), seed, fresh_disk=False, apt_source=boot["apt_source"])
    return "on" if containers.is_running(node) else "off"


def power_off(containers: Containers, node: str) -> None:
    """Hard power off: the node's container dies at once, frozen or not (then `Containers.kill` reaps it)."""
    frozen = _frozen_group(containers, node)
    if frozen is not None:
        # Every process of the node gets SIGKILL while frozen, then the group thaws: none runs again before dying.
        for pid in _node_processes(containers, node):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        thaw(containers, node)
    containers.kill(node)


# --- a hung node: its container frozen -------------------------------------------------------------------------


def _payloads(containers: Containers, node: str) -> list[Path]:
    """The node's container's groups (nspawn keeps its own process in `supervisor`, the container in `payload`)."""
    return [g / "payload" for g in containers.groups(node)]


def _node_processes(containers: Containers, node: str) -> list[int]:
    pids = {pid for g in _payloads(containers, node) for pid in cgroups.processes(g)}
    v1 = freezer_v1_group(containers, node)
    if v1 is not None:
        pids.update(cgroups.processes(v1))
    return sorted(pids)


def _cgroup2_payload(containers: Containers, node: str) -> Path | None:
    return next((g for g in _payloads(containers, node) if (g / "cgroup.freeze").exists()), None)


def freezer_v1_root(mountinfo: str, proc_cgroup: str) -> Path | None:
    """Where this process's cgroup sits in the v1 `freezer` hierarchy (None: no such hierarchy)."""
    own = next(
        (p for line in proc_cgroup.splitlines() for _, c, p in [line.split(":", 2)] if "freezer" in c.split(",")),
        None,
    )
    if own is None:
        return None
    for line in mountinfo.splitlines():
        fields, _, fs = line.partition(" - ")
        root, mount_point = fields.split()[3:5]
        fstype, _source, options = fs.split()[:3]
        if fstype == "cgroup" and "freezer" in options.split(",") and own.startswith(root):
            return Path(mount_point.replace("\\040", " ")) / own[len(root) :].lstrip("/")
    return None


def freezer_v1_group(containers: Containers, node: str) -> Path | None:
    """The node's group in the v1 freezer hierarchy (`<own>/<lab>/<node>`); it exists only while the node is frozen
    there."""
    root = freezer_v1_root(Path("/proc/self/mountinfo").read_text(), Path("/proc/self/cgroup").read_text())
    return None if root is None else root / containers.netns / node


def freeze_cgroup2(group: Path, timeout: float = 10) -> None:
    """Freeze a cgroup2 group and its subtree; returns once every task in it is frozen."""
    (group / "cgroup.freeze").write_text("1")
    deadline = time.monotonic() + timeout
    while "frozen 1" not in (group / "cgroup.events").read_text().splitlines():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{group}: not frozen within {timeout:.0f} s")
        time.sleep(0.02)


def thaw_cgroup2(group: Path) -> None:
    if (group / "cgroup.freeze").exists():
        (group / "cgroup.freeze").write_text("0")


def freeze_v1(group: Path, members: Callable[[], list[int]], timeout: float = 10) -> None:
    """Freeze `members()` in a v1 freezer group: the group is frozen first, then every member moved into it (a task
    that joins a frozen group freezes), until no member is left outside (a process forked meanwhile is caught on the
    next pass); returns once the group reports FROZEN."""
    group.mkdir(parents=True, exist_ok=True)
    (group / "freezer.state").write_text("FROZEN")
    deadline = time.monotonic() + timeout
    while True:
        outside = set(members()) - set(cgroups.processes(group))
        if not outside and (group / "freezer.state").read_text().strip() == "FROZEN":
            return
        for pid in outside:
            with contextlib.suppress(ProcessLookupError, OSError):
                (group / "cgroup.procs").write_text(str(pid))
        if time.monotonic() > deadline:
            raise TimeoutError(f"{group}: not frozen within {timeout:.0f} s")
        time.sleep(0.02)


def thaw_v1(group: Path, timeout: float = 5) -> None:
    """Thaw a v1 freezer group, move its processes back to the parent group, and remove it."""
    if not group.is_dir():
        return
    (group / "freezer.state").write_text("THAWED")
    deadline = time.monotonic() + timeout
    while (left := cgroups.processes(group)) and time.monotonic() < deadline:
        for pid in left:  # a process killed while frozen is exiting now: it leaves by itself
            with contextlib.suppress(ProcessLookupError, OSError):
                (group.parent / "cgroup.procs").write_text(str(pid))
        time.sleep(0.02)
    with contextlib.suppress(OSError):
        group.rmdir()
    with contextlib.suppress(OSError):
        group.parent.rmdir()  # the lab's group, once no node of it is frozen


def freeze(containers: Containers, node: str, timeout: float = 10, prefer_cgroup2: bool = True) -> None:
    """Hang a node: every process of its container stops where it is (nspawn, the "hypervisor", keeps running).
    Through the node's cgroup2 group where it has one (`prefer_cgroup2=False`: the v1 freezer all the same)."""
    payloads = _payloads(containers, node)
    if not any(cgroups.processes(g) for g in payloads):
        raise RuntimeError(f"{node}: no process to freeze (is it running?)")
    v2 = _cgroup2_payload(containers, node) if prefer_cgroup2 else None
    if v2 is not None:
        freeze_cgroup2(v2, timeout)
        return
    group = freezer_v1_group(containers, node)
    if group is None:
        raise RuntimeError("no cgroup freezer: neither a cgroup2 group for the node nor a v1 freezer hierarchy")
    freeze_v1(group, lambda: [p for g in payloads for p in cgroups.processes(g)], timeout)


def thaw(containers: Containers, node: str) -> None:
    v2 = _cgroup2_payload(containers, node)
    if v2 is not None:
        thaw_cgroup2(v2)
    group = freezer_v1_group(containers, node)
    if group is not None:
        thaw_v1(group)


def _frozen_group(containers: Containers, node: str) -> Path | None:
    v2 = _cgroup2_payload(containers, node)
    if v2 is not None and (v2 / "cgroup.freeze").read_text().strip() == "1":
        return v2
    v1 = freezer_v1_group(containers, node)
    if v1 is not None and (v1 / "freezer.state").exists() and (v1 / "freezer.state").read_text().strip() != "THAWED":
        return v1
    return None


def is_frozen(containers: Containers, node: str) -> bool:
    return _frozen_group(containers, node) is not None


# --- BMC processes, started and stopped by pid -----------------------------------------------------------------


def _listening(pid: int, address: str, port: int) -> bool:
    """A UDP socket bound to address:port in the network namespace of `pid`."""
    ip = ipaddress.ip_address(address)
    table = f"/proc/{pid}/net/udp{'6' if ip.version == 6 else ''}"
    try:
        lines = Path(table).read_text().splitlines()[1:]
    except FileNotFoundError:
        return False
    for line in lines:
        local = line.split()[1]
        host, _, hex_port = local.partition(":")
        raw = bytes.fromhex(host)
        # The kernel prints the address as 32-bit words in host order (little-endian here).
        packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
        if int(hex_port, 16) == port and ipaddress.ip_address(packed) == ip:
            return True
    return False


@dataclass(frozen=True)
class BmcRecord:
    node: str
    pid: int
    address: str
    port: int
    user: str
    control: list[str]
    post_seconds: float = 0.0


class Bmcs:
    """The lab's BMCs: one process per node inside the lab's namespace, each on an address of its own added to the
    lab bridge; recorded under `state_dir/bmc/` (pid, address, control; the password file, root only), so `down`
    stops them by pid even after the process that started them died."""

    def __init__(self, state_dir: Path, netns: str | None = None, bridge: str = BRIDGE) -> None:
        self.state_dir = state_dir.resolve()
        self.dir = self.state_dir / "bmc"
        self.netns = netns or netns_for(self.state_dir)
        self.bridge = bridge

    def _record_file(self, node: str) -> Path:
        return self.dir / f"{node}.json"

    def password_file(self, node: str) -> Path:
        return self.dir / f"{node}.password"

    def log_file(self, node: str) -> Path:
        return self.dir / f"{node}.log"

    def record(self, node: str) -> BmcRecord | None:
        path = self._record_file(node)
        return BmcRecord(**json.loads(path.read_text())) if path.exists() else None

    def names(self) -> list[str]:
        return sorted(p.name.removesuffix(".json") for p in self.dir.glob("*.json") if ".boot." not in p.name)

    def pid(self, node: str) -> int | None:
        """The node's BMC process, if the recorded pid still is the one this lab started (pids get reused)."""
        rec = self.record(node)
        if rec is None or not alive(rec.pid):
            return None
        try:
            cmdline = Path(f"/proc/{rec.pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            return None
        marks = [b"lab.bmc", b"serve", str(self.password_file(node)).encode()]
        return rec.pid if all(m in cmdline for m in marks) else None

    def start(
        self,
        node: str,
        address: str,
        user: str,
        password: str,
        control: list[str],
        port: int = DEFAULT_PORT,
        post_seconds: float = POST_SECONDS,
    ) -> int:
        """Start the node's BMC (or leave it running when nothing changed); returns its pid once it listens."""
        rec = self.record(node)
        pw_file = self.password_file(node)
        wanted = (address, port, user, control, post_seconds)
        same = rec is not None and (rec.address, rec.port, rec.user, rec.control, rec.post_seconds) == wanted
        if same and self.pid(node) is not None and pw_file.exists() and pw_file.read_text() == password:
            return rec.pid  # type: ignore[union-attr]
        self.stop(node)
        _write_private(pw_file, password)
        self._address(address, add=True)
        argv = [sys.executable, "-m", "lab.bmc", "serve", "--name", node, "--address", address, "--port", str(port)]
        argv += ["--user", user, "--password-file", str(pw_file), "--control", shlex.join(control)]
        argv += ["--post-seconds", str(post_seconds)]
        log = open(self.log_file(node), "ab")  # noqa: SIM115 - handed to the BMC process
        proc = subprocess.Popen(
            in_netns(self.netns, argv),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        _children[proc.pid] = proc
        record = BmcRecord(node, proc.pid, address, port, user, control, post_seconds)
        _write_private(self._record_file(node), json.dumps(asdict(record)))
        deadline = time.monotonic() + 15
        while not _listening(proc.pid, address, port):
            if proc.poll() is not None or time.monotonic() > deadline:
                self.stop(node)
                tail = self.log_file(node).read_text(errors="replace").strip().splitlines()[-10:]
                raise RuntimeError(f"BMC of {node} on {address}:{port} did not start:\n" + "\n".join(tail))
            time.sleep(0.05)
        return proc.pid

    def stop(self, node: str, timeout: float = 5) -> None:
        """Stop the node's BMC by pid (SIGTERM, then SIGKILL), take its address off the bridge, forget it."""
        rec = self.record(node)
        pid = self.pid(node)
        if pid is not None:
            terminate(pid, timeout)
        child = _children.pop(rec.pid, None) if rec is not None else None
        if child is not None:
            child.wait(timeout)
        if rec is not None:
            self._address(rec.address, add=False)
        self._record_file(node).unlink(missing_ok=True)
        self.password_file(node).unlink(missing_ok=True)

    def stop_all(self) -> None:
        for node in self.names():
            self.stop(node)

    def _address(self, address: str, add: bool) -> None:
        """The BMC's own address on the lab bridge (a host address: the bridge's subnet route already exists)."""
        if not Path(f"/run/netns/{self.netns}").exists():
            if add:
                raise RuntimeError(f"no network namespace {self.netns}: is the lab's network up?")
            return
        ip = ipaddress.ip_address(address)
        shown = subprocess.run(
            ["ip", "-j", "-n", self.netns, "addr", "show", "dev", self.bridge], capture_output=True, text=True
        )
        present = shown.returncode == 0 and any(
            a.get("local") == str(ip) for link in json.loads(shown.stdout or "[]") for a in link.get("addr_info", [])
        )
        if add == present:
            return
        cidr = f"{ip}/{ip.max_prefixlen}"
        verb = "add" if add else "del"
        done = subprocess.run(
            ["ip", "-n", self.netns, "addr", verb, cidr, "dev", self.bridge], capture_output=True, text=True
        )
        if done.returncode != 0 and add:
            raise RuntimeError(f"ip addr add {cidr} dev {self.bridge}: {done.stderr.strip()}")


def teardown(state_dir: Path, netns: str | None = None) -> None:
    """For the lab's `down` (first thing, before the containers stop; safe after a crash, and when nothing runs):
    stops every BMC by pid (none powers a node on behind `down`), thaws frozen nodes, forgets the nodes' boot."""
    state_dir = state_dir.resolve()
    netns = netns or netns_for(state_dir)
    Bmcs(state_dir, netns).stop_all()
    containers = Containers(state_dir, netns)
    for node in containers.names():
        thaw(containers, node)
    for boot in (state_dir / "bmc").glob("*.boot.json"):
        boot.unlink()
    for log in (state_dir / "bmc").glob("*.log"):
        log.unlink()
    with contextlib.suppress(OSError):
        (state_dir / "bmc").rmdir()


# --- python -m lab.bmc -------------------------------------------------------------------------------------------


def serve(a: argparse.Namespace) -> int:
    password = Path(a.password_file).read_text().rstrip("\n")
    power = CommandPower(tuple(shlex.split(a.control)))
    switch = PowerSwitch(a.name, power.on, power.off, power.is_on, post_seconds=a.post_seconds)
    bmc = node_bmc(switch, a.user, password, a.address, a.port)
    _log(f"{a.name}: BMC listening on {a.address}:{a.port} (IPMI 2.0, RMCP+), power: {a.control}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    bmc.listen()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.bmc", description="A lab node's BMC (IPMI 2.0 over LAN) and power.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run a node's BMC (in the lab's network namespace)")
    s.add_argument("--name", required=True, help="the node")
    s.add_argument("--address", required=True, help="address to listen on")
    s.add_argument("--port", type=int, default=DEFAULT_PORT)
    s.add_argument("--user", required=True)
    s.add_argument("--password-file", required=True, help="the user's password (first line)")
    s.add_argument("--control", required=True, help="power switch command; `on`, `off` or `status` is appended")
    s.add_argument("--post-seconds", type=float, default=0.0, help="a power on waits this long before booting")
    for name, what in (("power", "a lab node's power switch"), ("freeze", "hang a lab node"), ("thaw", "unhang it")):
        c = sub.add_parser(name, help=what)
        c.add_argument("--state-dir", type=Path, required=True, help="the lab's state directory")
        c.add_argument("node")
        if name == "power":
            c.add_argument("action", choices=["on", "off", "status"])
    a = p.parse_args(argv)
    if a.command == "serve":
        return serve(a)
    state_dir = a.state_dir.resolve()
    try:
        if a.command == "power":
            print(node_power(state_dir, a.node, a.action))
            return 0
        containers = Containers(state_dir, netns_for(state_dir))
        (freeze if a.command == "freeze" else thaw)(containers, a.node)
    except (RuntimeError, TimeoutError, OSError) as err:
        print(f"lab.bmc {a.command} {a.node}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
