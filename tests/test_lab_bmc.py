"""The lab's BMCs, driven by the real clients: `ipmitool -I lanplus` and Debian's `fence_ipmilan`.

A BMC runs as its own process in a network namespace the test makes (a bridge with the BMC's own address, as in the
lab), and the clients talk to it from a second namespace, over a veth on that bridge, as a cluster node would. Its
power switch is a fake (a file holding the state) or, in the last test, a real lab node. Freezing is tried on plain
processes in cgroups the test makes. Whatever a test starts (namespaces, BMCs, processes, cgroups) it stops by pid
and removes, whatever happens.
"""

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab import bmc, cgroups
from lab.nodes import Containers, NodeSeed, alive

ROOT = Path(__file__).resolve().parent.parent
NEEDS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, cgroups)")
FAKE_POWER = """#!/bin/sh
# A power switch: the state in a file ($1), every switching in $1.log; status prints it.
set -e
case "$2" in on|off) echo "$2" > "$1"; echo "$2" >> "$1.log";; esac
cat "$1" 2>/dev/null || echo off
"""
BMC_ADDRESS = "10.77.0.201"
BMC_ADDRESS_LAB = "192.168.100.201"
PASSWORD = "s3cret-fence"


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True)


@dataclass
class Net:
    lab: str
    client: str

    def client_run(
        self, argv: list[str], env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["nsenter", f"--net=/run/netns/{self.client}", *argv],
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            timeout=timeout,
        )


@pytest.fixture
def net() -> Iterator[Net]:
    """A lab-like namespace (bridge br0, 10.77.0.1/24) and a client namespace on the bridge (10.77.0.11)."""
    tag = f"{os.getpid()}-{time.monotonic_ns() % 100000}"
    n = Net(f"bmct-lab-{tag}", f"bmct-cli-{tag}")
    try:
        for ns in (n.lab, n.client):
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", n.lab, "link", "add", "br0", "type", "bridge")
        _ip("-n", n.lab, "addr", "add", "10.77.0.1/24", "dev", "br0")
        _ip("-n", n.lab, "link", "set", "br0", "up")
        _ip("-n", n.lab, "link", "add", "vb", "type", "veth", "peer", "name", "vc", "netns", n.client)
        _ip("-n", n.lab, "link", "set", "vb", "master", "br0", "up")
        _ip("-n", n.client, "addr", "add", "10.77.0.11/24", "dev", "vc")
        _ip("-n", n.client, "link", "set", "vc", "up")
        yield n
    finally:
        for ns in (n.lab, n.client):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.fixture
def fake_bmc(net: Net, tmp_path: Path) -> Iterator[tuple[bmc.Bmcs, Path]]:
    """A BMC on 10.77.0.201:623 in the lab namespace, its power switch a file."""
    script = tmp_path / "fake-power"
    script.write_text(FAKE_POWER)
    script.chmod(0o755)
    state = tmp_path / "power"
    bmcs = bmc.Bmcs(tmp_path / "lab", net.lab)
    try:
        bmcs.start("n1", BMC_ADDRESS, "admin", PASSWORD, [str(script), str(state)], post_seconds=0)
        yield bmcs, state
    finally:
        bmcs.stop_all()


def ipmitool(net: Net, password: str, *command: str) -> subprocess.CompletedProcess[str]:
    # -E: the password from IPMI_PASSWORD, never on a command line.
    argv = ["ipmitool", "-I", "lanplus", "-H", BMC_ADDRESS, "-U", "admin", "-E", *command]
    return net.client_run(argv, env={"IPMI_PASSWORD": password})


def fence(
    net: Net, tmp_path: Path, action: str, password: str = PASSWORD, address: str = BMC_ADDRESS
) -> tuple[int, str, float]:
    """fence_ipmilan as Pacemaker runs it, the password from a script; (exit code, output, seconds)."""
    pw = tmp_path / f"pw-{abs(hash(password))}"
    pw.write_text(password + "\n")
    pw.chmod(0o600)
    script = tmp_path / f"pw-{abs(hash(password))}.sh"
    script.write_text(f"#!/bin/sh\ncat {pw}\n")
    script.chmod(0o700)
    argv = ["fence_ipmilan", "--lanplus", "--ip", address, "--username", "admin"]
    argv += ["--password-script", str(script), "--action", action]
    started = time.monotonic()
    done = net.client_run(argv)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def wait_until(what: str, check: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)


def power_log(state: Path) -> list[str]:
    log = state.with_name(state.name + ".log")
    return log.read_text().split() if log.exists() else []


# --- without root --------------------------------------------------------------------------------------------


def test_command_power_runs_the_switch_with_on_off_status(tmp_path: Path) -> None:
    script = tmp_path / "fake-power"
    script.write_text(FAKE_POWER)
    script.chmod(0o755)
    power = bmc.CommandPower((str(script), str(tmp_path / "state")))
    assert not power.is_on()
    power.on()
    assert power.is_on()
    power.off()
    assert not power.is_on()
    assert power_log(tmp_path / "state") == ["on", "off"]
    broken = bmc.CommandPower(("sh", "-c", "echo maybe", "x"))
    with pytest.raises(RuntimeError, match="not on or off"):
        broken.is_on()
    failing = bmc.CommandPower(("sh", "-c", "echo no >&2; exit 3", "x"))
    with pytest.raises(RuntimeError, match="exited 3: no"):
        failing.off()


def test_power_switch_acts_in_order_and_answers_within_its_limit() -> None:
    done: list[str] = []
    state = {"on": False}
    release = threading.Event()

    def on() -> None:
        release.wait(5)  # a slow boot
        state["on"] = True
        done.append("on")

    def off() -> None:
        if not done:
            raise RuntimeError("the first off fails")
        state["on"] = False
        done.append("off")

    switch = bmc.PowerSwitch("n1", on, off, lambda: state["on"], answer_within=0.2)
    assert switch.request("off")  # failed (logged), answered at once: the worker goes on
    started = time.monotonic()
    assert not switch.request("on")  # a power on answers at once, before the OS boots, as a BMC does
    assert time.monotonic() - started < 0.1
    assert switch.is_on() and not state["on"]  # the chassis is on from the request, its OS still booting
    release.set()
    assert switch.request("cycle")  # queued behind the boot, then off and on
    assert done == ["on", "off", "on"] and switch.is_on()
    with pytest.raises(ValueError):
        switch.request("diag")


def test_power_on_reports_on_through_the_self_test_and_a_power_off_cancels_it() -> None:
    state = {"on": False}
    booted = threading.Event()

    def on() -> None:
        state["on"] = True
        booted.set()

    def off() -> None:
        state["on"] = False

    switch = bmc.PowerSwitch("n1", on, off, lambda: state["on"], answer_within=0.1, post_seconds=0.6)
    started = time.monotonic()
    assert not switch.request("on")  # answered before the boot
    assert time.monotonic() - started < 0.1
    assert switch.is_on() and not state["on"]  # the chassis is on, its OS not booted yet
    assert booted.wait(3)
    assert 0.5 < time.monotonic() - started < 2
    assert switch.is_on()

    switch.request("off")
    assert not switch.is_on()
    booted.clear()
    switch.request("on")
    assert switch.is_on()
    switch.request("off")  # during the self-test: the boot never happens
    time.sleep(1)
    assert not booted.is_set() and not switch.is_on()


def test_freezer_v1_root_is_found_from_mountinfo_and_own_cgroup() -> None:
    mounts = (
        "37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
        "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    )
    assert bmc.freezer_v1_root(mounts, "6:freezer:/lab.scope\n9:name=systemd:/\n") == Path(
        "/sys/fs/cgroup/freezer/lab.scope"
    )
    assert bmc.freezer_v1_root("41 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "0::/x\n") is None


def test_lab_power_control_records_how_the_node_boots(tmp_path: Path) -> None:
    seed = NodeSeed("lab1", "52:54:00:00:00:01", "#cloud-config\n", "local-hostname: lab1\n", "version: 2\n")
    argv = bmc.lab_power_control(tmp_path, Path("/var/cache/rootfs"), seed, "deb [trusted=yes] http://x/ ./\n")
    assert argv[1:] == ["-m", "lab.bmc", "power", "--state-dir", str(tmp_path.resolve()), "lab1"]
    boot = tmp_path / "bmc" / "lab1.boot.json"
    assert boot.stat().st_mode & 0o777 == 0o600
    # A node that is not running is off.
    done = subprocess.run([*argv, "status"], capture_output=True, text=True, cwd=ROOT)
    assert (done.returncode, done.stdout) == (0, "off\n"), done.stderr


# --- a BMC process, driven by ipmitool and fence_ipmilan ------------------------------------------------------


@pytest.mark.e2e
@NEEDS_ROOT
def test_ipmitool_and_fence_ipmilan_drive_the_power_switch(
    fake_bmc: tuple[bmc.Bmcs, Path], net: Net, tmp_path: Path
) -> None:
    _, state = fake_bmc

    done = ipmitool(net, PASSWORD, "chassis", "power", "status")
    assert (done.returncode, done.stdout.strip()) == (0, "Chassis Power is off"), done.stderr
    done = ipmitool(net, PASSWORD, "chassis", "power", "on")
    assert done.returncode == 0, done.stderr
    wait_until(
        "powered on",
        lambda: ipmitool(net, PASSWORD, "chassis", "power", "status").stdout.strip() == "Chassis Power is on",
    )
    assert power_log(state) == ["on"]

    # A wrong password gets no session, and switches nothing.
    done = ipmitool(net, "wrong", "chassis", "power", "off")
    assert done.returncode != 0 and "Unable to establish IPMI v2 / RMCP+ session" in done.stderr
    rc, out, _ = fence(net, tmp_path, "off", password="wrong")
    assert (rc, "Unable to obtain correct plug status" in out) == (1, True), out
    assert power_log(state) == ["on"]

    rc, out, _ = fence(net, tmp_path, "status")
    assert (rc, "Status: ON" in out) == (0, True), out
    rc, out, took = fence(net, tmp_path, "off")
    assert (rc, "Success: Powered OFF" in out) == (0, True), out
    print(f"fence_ipmilan off (fake switch): {took:.2f} s")
    assert state.read_text().strip() == "off"
    rc, out, _ = fence(net, tmp_path, "status")
    assert (rc, "Status: OFF" in out) == (2, True), out  # the agent's "off" exit code
    rc, out, _ = fence(net, tmp_path, "on")
    assert (rc, "Success: Powered ON" in out) == (0, True), out
    rc, out, took = fence(net, tmp_path, "reboot")
    assert (rc, "Success: Rebooted" in out) == (0, True), out
    print(f"fence_ipmilan reboot (fake switch): {took:.2f} s")
    assert power_log(state) == ["on", "off", "on", "off", "on"]

    # Power cycle (reset too) is off then on.
    assert ipmitool(net, PASSWORD, "chassis", "power", "cycle").returncode == 0
    wait_until("cycled", lambda: len(power_log(state)) == 7)
    assert power_log(state)[-2:] == ["off", "on"]
    # The node boots from its disk, whatever is asked.
    assert ipmitool(net, PASSWORD, "chassis", "bootdev", "pxe").returncode == 0
    assert (
        "Boot Device Selector : Force Boot from default Hard-Drive"
        in ipmitool(net, PASSWORD, "chassis", "bootparam", "get", "5").stdout
    )


@pytest.mark.e2e
@NEEDS_ROOT
def test_bmcs_are_stopped_by_pid_from_their_records(fake_bmc: tuple[bmc.Bmcs, Path], net: Net, tmp_path: Path) -> None:
    bmcs, _ = fake_bmc
    pid = bmcs.pid("n1")
    assert pid is not None and alive(pid)
    # Started again unchanged: the same process; with another password: a new one.
    control = bmcs.record("n1").control  # type: ignore[union-attr]
    assert bmcs.start("n1", BMC_ADDRESS, "admin", PASSWORD, control, post_seconds=0) == pid
    assert (bmcs.password_file("n1").stat().st_mode & 0o777) == 0o600
    new = bmcs.start("n1", BMC_ADDRESS, "admin", "another", control, post_seconds=0)
    assert new != pid and not alive(pid)
    assert ipmitool(net, "another", "chassis", "power", "status").returncode == 0
    # As after a crash of what started it: only the state directory is left to go by.
    bmc.teardown(tmp_path / "lab", net.lab)
    assert not alive(new)
    assert bmc.Bmcs(tmp_path / "lab", net.lab).names() == []
    shown = subprocess.run(["ip", "-n", net.lab, "addr", "show", "br0"], capture_output=True, text=True).stdout
    assert BMC_ADDRESS not in shown


# --- a hung node: frozen, and still powered off ----------------------------------------------------------------


@pytest.fixture
def plain_node(tmp_path: Path) -> Iterator[tuple[Containers, subprocess.Popen[bytes], Path]]:
    """A "node" that is a shell counting into a file (forking a `sleep` each round), in the payload groups a lab
    node's container would have."""
    containers = Containers(tmp_path / "lab", f"bmct-cg-{os.getpid()}-{time.monotonic_ns() % 100000}")
    counter = tmp_path / "counter"
    count = f"i=0; while :; do i=$((i+1)); echo $i > {counter}; sleep 0.01; done"
    payloads = [g / "payload" for g in containers.groups("n1")]
    proc = subprocess.Popen(cgroups.entering(payloads, ["sh", "-c", count]), start_new_session=True)
    try:
        wait_until("counting", lambda: counter.exists() and counter.read_text().strip() not in ("", "1"))
        yield containers, proc, counter
    finally:
        bmc.thaw(containers, "n1")
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        containers.remove_groups()


def counting(counter: Path) -> bool:
    before = counter.read_text()
    time.sleep(0.3)
    return counter.read_text() != before


@pytest.mark.e2e
@NEEDS_ROOT
@pytest.mark.parametrize("prefer_cgroup2", [True, False], ids=["cgroup2", "freezer-v1"])
def test_freeze_stops_every_process_and_power_off_still_kills_them(
    plain_node: tuple[Containers, subprocess.Popen[bytes], Path], prefer_cgroup2: bool
) -> None:
    containers, proc, counter = plain_node
    if not prefer_cgroup2 and bmc.freezer_v1_group(containers, "n1") is None:
        pytest.skip("no v1 freezer hierarchy here")
    if prefer_cgroup2 and bmc._cgroup2_payload(containers, "n1") is None:
        pytest.skip("no cgroup2 group for nodes here")
    bmc.freeze(containers, "n1", prefer_cgroup2=prefer_cgroup2)
    assert bmc.is_frozen(containers, "n1")
    assert not counting(counter)
    assert alive(proc.pid)
    bmc.thaw(containers, "n1")
    assert not bmc.is_frozen(containers, "n1")
    # A thaw is asynchronous (the kernel wakes the group's tasks after the write returns): once thawed, it counts
    # again, however loaded the machine (0.3 s once saw no count in CI).
    wait_until("counting again after the thaw", lambda: counting(counter), timeout=10)
    if not prefer_cgroup2:
        assert not bmc.freezer_v1_group(containers, "n1").exists()  # type: ignore[union-attr]

    bmc.freeze(containers, "n1", prefer_cgroup2=prefer_cgroup2)
    pids = bmc._node_processes(containers, "n1")
    assert proc.pid in pids
    bmc.power_off(containers, "n1")  # no container here: the frozen processes die all the same
    assert proc.wait(5) == -signal.SIGKILL
    wait_until("every process gone", lambda: not any(alive(p) for p in pids), 5)
    assert not bmc.is_frozen(containers, "n1")


# --- a real lab node behind its BMC -----------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.xdist_group("lab")
@pytest.mark.timeout(600)
@NEEDS_ROOT
def test_a_lab_node_is_fenced_off_and_on_through_its_bmc_even_hung(tmp_path: Path) -> None:
    """A real lab node (container booting the node image) behind its BMC: fence_ipmilan really stops it, really boots
    it again from its disk, and powers it off while it is frozen."""
    from lab.image import ensure_rootfs, image_recipe
    from lab.nodes import LabNetwork, netns_for

    state = (tmp_path / "lab").resolve()
    netns = netns_for(state)
    network = LabNetwork(netns, "192.168.100.1/24")
    containers = Containers(state, netns)
    bmcs = bmc.Bmcs(state, netns)
    rootfs = ensure_rootfs(image_recipe())
    network_config = (
        "version: 2\nethernets:\n  eth0:\n    match:\n      macaddress: '52:54:00:b3:c0:01'\n    set-name: eth0\n"
        "    addresses: [192.168.100.61/24]\n"
    )
    seed = NodeSeed(
        "bmc1", "52:54:00:b3:c0:01", "#cloud-config\n{}\n", "instance-id: bmc1\nlocal-hostname: bmc1\n", network_config
    )
    lab_net = Net(netns, netns)  # fence_ipmilan runs on the lab's side of the bridge, as the driver
    try:
        network.up()
        containers.start(rootfs, seed)
        wait_until("the node's init", lambda: containers.init_pid("bmc1") is not None)
        bmcs.start("bmc1", BMC_ADDRESS_LAB, "admin", PASSWORD, bmc.lab_power_control(state, rootfs, seed))

        def fence_lab(action: str) -> tuple[int, str, float]:
            return fence(lab_net, tmp_path, action, address=BMC_ADDRESS_LAB)

        rc, out, _ = fence_lab("status")
        assert (rc, "Status: ON" in out) == (0, True), out
        first = containers.init_pid("bmc1")
        assert first is not None
        (containers.node_dir("bmc1") / "root/var/tmp/before-the-fence").write_text("kept\n")
        rc, out, took = fence_lab("off")
        assert (rc, "Success: Powered OFF" in out) == (0, True), out
        print(f"fence_ipmilan off (lab node): {took:.2f} s")
        assert not containers.is_running("bmc1") and not alive(first)

        rc, out, took = fence_lab("on")
        assert (rc, "Success: Powered ON" in out) == (0, True), out
        print(f"fence_ipmilan on (lab node): {took:.2f} s")
        wait_until("the node's init again", lambda: containers.init_pid("bmc1") not in (None, first))
        # Booted from its own disk: what was written there before is still there.
        assert (containers.node_dir("bmc1") / "root/var/tmp/before-the-fence").read_text() == "kept\n"

        # Hung: every process of the node frozen; the BMC still says on, and powers it off.
        wait_until("the node's systemd running", lambda: len(bmc._node_processes(containers, "bmc1")) > 3, 60)
        bmc.freeze(containers, "bmc1")
        assert bmc.is_frozen(containers, "bmc1")
        hung = bmc._node_processes(containers, "bmc1")
        rc, out, _ = fence_lab("status")
        assert (rc, "Status: ON" in out) == (0, True), out
        rc, out, took = fence_lab("off")
        assert (rc, "Success: Powered OFF" in out) == (0, True), out
        print(f"fence_ipmilan off (lab node, frozen): {took:.2f} s")
        assert not containers.is_running("bmc1")
        wait_until("every process of the hung node gone", lambda: not any(alive(p) for p in hung), 10)

        # Reboot of a node that is off: on.
        rc, out, took = fence_lab("reboot")
        assert (rc, "Success: Rebooted" in out) == (0, True), out
        print(f"fence_ipmilan reboot (lab node, from off): {took:.2f} s")
        # The fence reports on at once; the node boots after the BMC's self-test, as a machine does.
        assert not containers.is_running("bmc1")
        returned = time.monotonic()
        wait_until("the node booted after its self-test", lambda: containers.is_running("bmc1"), 30)
        assert time.monotonic() - returned > bmc.POST_SECONDS - took - 1
    finally:
        bmc.teardown(state, netns)
        for name in containers.names():
            containers.stop(name)
        containers.remove_groups()
        network.down()
        subprocess.run(["rm", "-rf", str(state / "nodes")], check=False)
    assert not Path(f"/run/netns/{netns}").exists()
    assert str(state) not in Path("/proc/self/mounts").read_text()
