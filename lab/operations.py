"""What the lab does: up, status, failover, down. Each works from what is on disk, so it also cleans up after a
failed or interrupted run."""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.bake import bake_script
from components.plan import cib_expectations
from components.render import every_package
from components.settings import Settings, SettingsError
from procs.runner import Runner, run
from verify.stackfile import settings_from_stack_file, stack_config

from . import bmc
from .apt_repo import AptServer, ensure_repo, repo_recipe, source_line
from .engine import BmcPlan, Lab, Log
from .image import ensure_baked, ensure_rootfs, image_recipe, rootfs_path
from .nodes import LabNetwork, in_netns
from .probe import Outage, Sample, outage_around, parse_samples
from .ssh import Connection

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STACK = ROOT / "Pulumi.lab.yaml"


def default_state_dir() -> Path:
    return Path(os.environ.get("HA_LB_LAB_DIR", ROOT / ".lab"))


@dataclass
class LabContext:
    stack: Path
    settings: Settings
    lab: Lab
    network: LabNetwork
    apt: AptServer
    """The lab's APT repository, served on the gateway: the nodes' Debian mirror."""

    @property
    def outputs(self) -> dict[str, Any]:
        path = self.lab.state_dir / "outputs.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def connection(self, host: str, timeout: int = 3) -> Connection:
        out = self.outputs
        return Connection(host, out["sshUser"], self.settings.ssh.port, out["sshPrivateKey"], 1, timeout)

    def on(self, node: str, command: str, timeout: float = 60) -> tuple[bool, str]:
        """Run a command (as root, through sudo) on a node; (ok, stdout)."""
        address = str(next(n.address for n in self.settings.vms if n.name == node))
        done = self.lab.ssh.exec(self.connection(address), f"sudo -n {command}", timeout=timeout)
        return done.ok, done.stdout


IMAGES = ("cloud", "baked")
"""The lab's node images (`lab:image` in the stack file): `cloud`, as Debian's genericcloud image (cloud-init
installs the packages at first boot); `baked`, as an image made by `scripts/bake-image` (they are in it already)."""


def lab_image(stack: Path) -> str:
    image = str(stack_config(stack).get("lab:image", "cloud"))
    if image not in IMAGES:
        raise SettingsError([f"lab:image: {image!r} is not one of {', '.join(IMAGES)}"])
    return image


def lab_stack(
    folder: Path,
    name: str,
    nodes: int | None = None,
    cluster: dict[str, Any] | None = None,
    memory_mib: int | dict[str, int] | None = None,
    image: str | None = None,
) -> Path:
    """A variant of the lab stack, written as `folder/Pulumi.<name>.yaml`: another node count, cluster settings,
    another VM size (`memory_mib`: every node's, or some nodes' by name), which replaces those nodes' VMs; another
    node image (`image`: `baked`, with the packages baked in, and the stack set as a baked image's stack is told)."""
    doc = yaml.safe_load(DEFAULT_STACK.read_text())
    config = doc["config"]
    if image is not None:
        config["lab:image"] = image
        if image == "baked":
            # As a baked image's stack is told: nothing to install, no package index to read at first boot (the lab
            # stack asks for an update explicitly, as on a VM installing at first boot).
            baked = {"packagesInImage": True, "packageUpdate": False}
            config["ha-lb:cloudInit"] = {**config.get("ha-lb:cloudInit", {}), **baked}
    counted = {**config.get("ha-lb:nodes", {}), **({"count": nodes} if nodes is not None else {})}
    prefix, count = counted.get("namePrefix", "node"), int(counted.get("count", 2))
    config["ha-lb:nodes"] = counted
    if isinstance(memory_mib, int):
        counted["memoryMib"] = memory_mib
    elif memory_mib:
        # The same nodes as an explicit list (names and addresses as counted), some with a size of their own.
        first = ipaddress.ip_address(config["ha-lb:network"]["firstAddress"])
        listed = [{"name": f"{prefix}{i}", "address": str(first + i - 1)} for i in range(1, count + 1)]
        sized = [{**n, "memoryMib": memory_mib[n["name"]]} if n["name"] in memory_mib else n for n in listed]
        config["ha-lb:nodes"] = {"list": sized}
    config["ha-lb:cluster"] = {**config.get("ha-lb:cluster", {}), **(cluster or {})}
    ipmi = config["ha-lb:cluster"].get("fencing", {}).get("ipmi")
    if ipmi is not None:
        # A BMC address for every node: the lab's BMCs sit at .200 + the node's number on the lab's network.
        net = ipaddress.ip_network(config["ha-lb:network"]["cidr"])
        fencing = dict(config["ha-lb:cluster"]["fencing"])
        fencing["ipmi"] = {**ipmi, "addresses": {f"{prefix}{i}": str(net[200 + i]) for i in range(1, count + 1)}}
        config["ha-lb:cluster"]["fencing"] = fencing
    path = folder / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def context(
    stack: Path = DEFAULT_STACK, state_dir: Path | None = None, log: Log = print, runner: Runner = run
) -> LabContext:
    s = settings_from_stack_file(stack)
    lab_image(stack)  # a bad lab:image is refused before anything is built
    lab = Lab((state_dir or default_state_dir()).resolve(), rootfs_path(image_recipe()), log, runner)
    network = LabNetwork(lab.netns, f"{s.gateway}/{s.network.cidr.prefixlen}", runner)
    apt = AptServer(lab.state_dir, lab.netns, str(s.gateway), runner=runner)
    return LabContext(stack, s, lab, network, apt)


def wait_for(what: str, check: Callable[[], bool], timeout: float, every: float = 0.2) -> float:
    """Poll until `check()` holds; the seconds it took. A deadline, never a fixed sleep."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)
    return time.monotonic() - started


def http_status(netns: str, url: str, auth: str | None = None, timeout: float = 1.0) -> int:
    """HTTP status of a GET from inside the lab's namespace (0: no answer)."""
    argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", str(timeout)]
    with tempfile.NamedTemporaryFile("w", prefix="ha-lb-auth-") as cfg:
        if auth:
            # curl reads the credentials from a config file: never on a command line.
            cfg.write(f'user = "{auth}"\n')
            cfg.flush()
            argv += ["-K", cfg.name]
        done = run(in_netns(netns, [*argv, url]), timeout=timeout + 5)
    return int(done.stdout or 0) if done.stdout.strip().isdigit() else 0


def stats_auth(ctx: LabContext) -> str:
    return f"{ctx.outputs['statsUser']}:{ctx.outputs['statsPassword']}"


def up(ctx: LabContext, rerun: bool = False, rejoin_timeout: float = 180) -> float:
    """Nodes, then the stack; returns seconds from the first resource to the VIP serving the stats page. Returns once
    every node is online as the cluster sees it (a node booted again has rejoined) and the live CIB holds what the
    plan declares."""
    started = time.monotonic()
    image = image_recipe()
    packages = every_package(ctx.settings)
    plain = ensure_rootfs(image, log=ctx.lab.log)
    repo = ensure_repo(repo_recipe(image, packages), plain, log=ctx.lab.log)
    baked = lab_image(ctx.stack) == "baked"
    ctx.lab.rootfs = ensure_baked(plain, repo, bake_script(packages), log=ctx.lab.log) if baked else plain
    ctx.network.up()
    ctx.apt.start(repo)
    ctx.lab.apt_source = source_line(str(ctx.settings.gateway), ctx.apt.port)
    ctx.lab.log(f"up: {ctx.stack.name}: {len(ctx.settings.node_list)} nodes, VIP {ctx.settings.vip.address}")
    config, secret_keys = lab_config(ctx)
    t0 = time.monotonic()
    outputs, error = ctx.lab.apply(config, rerun=rerun, secret_keys=secret_keys)
    if outputs:
        path = ctx.lab.state_dir / "outputs.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(outputs, f, indent=1)
    if error is not None:
        raise RuntimeError(f"up failed: {error}\n(fix the cause and run `up` again: done steps are kept)")

    def serving() -> bool:
        return http_status(ctx.lab.netns, stats_url(ctx), stats_auth(ctx)) == 200

    wait_for("the stats page on the VIP", serving, 120)
    to_vip = time.monotonic() - t0
    ctx.lab.log(f"up: VIP serving {to_vip:.1f} s after the first resource")
    names = {n.name for n in ctx.settings.node_list}
    try:
        took = wait_for("every node online", lambda: all_online_everywhere(ctx, names), rejoin_timeout, 0.5)
    except TimeoutError as e:
        raise TimeoutError(f"{e}\n{cluster_report(ctx)}") from e
    ctx.lab.log(f"up: every node online as every node sees it (waited {took:.1f} s)")
    missing = drift(ctx)
    if missing:
        raise RuntimeError("up: the live CIB has drifted from the plan; missing: " + "; ".join(missing))
    ctx.lab.log(f"up: the live CIB holds what the plan declares; {time.monotonic() - started:.1f} s in all")
    return to_vip


def lab_config(ctx: LabContext) -> tuple[dict[str, Any], list[str]]:
    """The stack's config as the lab applies it, and its secret keys: with fence_ipmilan, the lab's BMC password as
    the secret `fencePassword` (the BMCs start with it: `Lab.bmcs`)."""
    config = stack_config(ctx.stack)
    s = ctx.settings
    ipmi = s.cluster.fencing.ipmi
    if not (s.stonith_enabled and s.cluster.fencing.agent == "fence_ipmilan" and ipmi is not None):
        ctx.lab.bmcs = None
        return config, []
    password = ctx.lab.fence_password()
    ctx.lab.bmcs = BmcPlan(ipmi.user, password, {n: str(a) for n, a in ipmi.addresses.items()})
    config["ha-lb:fencePassword"] = password
    return config, ["ha-lb:fencePassword"]


def all_online_everywhere(ctx: LabContext, names: set[str]) -> bool:
    """Every node of the stack online in every running node's view (a node booted again has rejoined: its own view
    and the others' agree)."""
    views = [cluster_view(ctx, node) for node in alive_nodes(ctx)]
    return bool(views) and all(v == dict.fromkeys(names, True) for v in views)


def cluster_view(ctx: LabContext, node: str) -> dict[str, bool] | None:
    """Online state of every cluster node as `node`'s Pacemaker sees it (None: it does not answer)."""
    ok, out = ctx.on(node, "crm_mon -1 --output-as=xml", timeout=15)
    if not ok:
        return None
    listed = ET.fromstring(out).find("nodes")
    return {n.get("name", ""): n.get("online") == "true" for n in (listed if listed is not None else [])}


# Reads the XPaths from stdin, one a line; prints "<index> <cibadmin's exit>" for each.
_DRIFT_SCRIPT = (
    "cibadmin --query --scope crm_config >/dev/null || exit 3\n"
    "i=0\n"
    "while IFS= read -r x; do\n"
    '  rc=0; cibadmin --query --xpath "$x" >/dev/null 2>&1 || rc=$?; echo "$i $rc"; i=$((i + 1))\n'
    "done\n"
)
_NO_MATCH = 105  # cibadmin: "No such device or address", the XPath matched nothing


def drift(ctx: LabContext) -> list[str]:
    """What the plan declares and the live CIB lacks (or holds where it must not), asked of a node that answers:
    each of `cib_expectations` queried with `cibadmin --query --xpath`."""
    expected = cib_expectations(ctx.settings)
    stdin = "".join(e.xpath + "\n" for e in expected)
    command = f"sudo -n bash -c {shlex.quote(_DRIFT_SCRIPT)}"
    tried = []
    for node in alive_nodes(ctx):
        address = str(next(n.address for n in ctx.settings.node_list if n.name == node))
        done = ctx.lab.ssh.exec(ctx.connection(address, timeout=5), command, stdin=stdin, timeout=120)
        rcs = dict(line.split() for line in done.stdout.splitlines() if len(line.split()) == 2)
        if not done.ok or len(rcs) != len(expected) or set(rcs.values()) - {"0", str(_NO_MATCH)}:
            tried.append(f"{node}: {done.tail(2) or f'exit {done.returncode}'}")
            continue
        return [
            e.what if e.present else f"{e.what} (found where it must not be)"
            for i, e in enumerate(expected)
            if (rcs[str(i)] == "0") != e.present
        ]
    raise RuntimeError(f"no node answered the CIB query ({'; '.join(tried) or 'no node running'})")


def stats_url(ctx: LabContext) -> str:
    st = ctx.settings.haproxy.stats
    return f"http://{ctx.settings.vip.address}:{st.port}{st.uri}"


def alive_nodes(ctx: LabContext) -> list[str]:
    return [n.name for n in ctx.settings.node_list if ctx.lab.containers.is_running(n.name)]


def vip_node(ctx: LabContext) -> str | None:
    for node in alive_nodes(ctx):
        ok, out = ctx.on(node, "crm_resource --locate -r vip -Q", timeout=15)
        if ok and out.strip():
            return out.strip().splitlines()[0]
    return None


def dc_node(ctx: LabContext) -> str | None:
    """The cluster's DC as the first live node that answers sees it."""
    for node in alive_nodes(ctx):
        ok, out = ctx.on(node, "crm_mon -1 --output-as=xml", timeout=15)
        found = re.search(r'<current_dc [^>]*name="([^"]+)"', out) if ok else None
        if found:
            return found.group(1)
    return None


def node_states(ctx: LabContext) -> dict[str, bool]:
    """Online state of every cluster node as the first live node that answers sees it."""
    for node in alive_nodes(ctx):
        view = cluster_view(ctx, node)
        if view is not None:
            return view
    return {}


def status(ctx: LabContext) -> int:
    nodes = alive_nodes(ctx)
    ctx.lab.log(f"nodes running: {', '.join(nodes) or 'none'}")
    if not nodes:
        return 1
    ok, out = False, ""
    for node in nodes:  # a node booted a moment ago may not answer yet: the next one does
        ok, out = ctx.on(node, "pcs status", timeout=30)
        if ok:
            break
    ctx.lab.log(out.rstrip())
    ctx.lab.log(f"VIP {ctx.settings.vip.address} on: {vip_node(ctx) or 'no node'}")
    with_auth = http_status(ctx.lab.netns, stats_url(ctx), stats_auth(ctx))
    without = http_status(ctx.lab.netns, stats_url(ctx))
    ctx.lab.log(f"stats page {stats_url(ctx)}: {with_auth} with credentials, {without} without")
    return 0 if ok and with_auth == 200 else 1


@dataclass(frozen=True)
class FailoverResult:
    killed: str
    serving_from: str | None
    outage: Outage


class Prober:
    """`lab.probe` running inside the lab's namespace, stopped by pid. Every 10 ms: an outage is measured between
    answered probes, so each side overstates it by up to an interval (every 50 ms: 0.05 s more in the mean)."""

    def __init__(self, netns: str, url: str, auth: str | None, interval: float = 0.01, timeout: float = 0.5) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ha-lb-probe-"))
        self.out = self.dir / "samples"
        argv = [
            sys.executable,
            "-m",
            "lab.probe",
            url,
            str(self.out),
            "--interval",
            str(interval),
            "--timeout",
            str(timeout),
        ]
        if auth:
            (self.dir / "auth").write_text(auth)
            os.chmod(self.dir / "auth", 0o600)
            argv += ["--auth-file", str(self.dir / "auth")]
        self.proc = subprocess.Popen(in_netns(netns, argv), cwd=ROOT, stdin=subprocess.DEVNULL)

    def samples(self) -> list[Sample]:
        return parse_samples(self.out.read_text().splitlines()) if self.out.exists() else []

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def measure_outage(
    ctx: LabContext,
    act: Callable[[], None],
    moved: Callable[[], bool] = lambda: True,
    recovered_after: int = 25,
    timeout: float = 120,
) -> tuple[Outage, list[Sample], float]:
    """Probe the VIP around `act()`: the outage (longest gap between answered probes, by completion), the probes,
    and when `act` ran. Service counts as back once `moved()` holds and `recovered_after` probes sent since answered
    (25: a quarter of a second of probes): steadily again, not one lucky answer."""
    prober = Prober(ctx.lab.netns, stats_url(ctx), stats_auth(ctx))
    samples: list[Sample] = []
    try:
        wait_for("probes answering through the VIP", lambda: sum(s.ok for s in prober.samples()) >= 10, 30)
        at = time.time()
        act()
        # A planned move starts a moment after its command returns: count answers only once it has happened.
        wait_for("the VIP moved", moved, timeout, 0.1)
        since = time.time()

        def answered_since() -> bool:
            return sum(s.ok and s.start > since for s in prober.samples()) >= recovered_after

        wait_for("the VIP serving again", answered_since, timeout, 0.1)
        time.sleep(0.5)  # a tail of answered probes, for the timeline
    finally:
        samples = prober.samples()
        prober.stop()
    outage = outage_around(samples, at)
    if outage is None:
        raise RuntimeError("no answered probe on one side of the event")
    return outage, samples, at


def settled_vip_node(ctx: LabContext, timeout: float = 180) -> str:
    """Wait for every node online in every node's view and the VIP on one node; returns that node."""
    names = {n.name for n in ctx.settings.node_list}
    try:
        wait_for("every node online", lambda: all_online_everywhere(ctx, names), timeout, 1)
    except TimeoutError as e:
        raise TimeoutError(f"{e}\n{cluster_report(ctx)}") from e
    wait_for("the VIP on one node", lambda: len(resource_nodes(ctx).get("vip", ())) == 1, 60)
    (home,) = resource_nodes(ctx)["vip"]
    return home


def cluster_report(ctx: LabContext) -> str:
    """What the live nodes say about the cluster: status with fail counts, quorum, the controller's last words."""
    parts = []
    for node in alive_nodes(ctx):
        for command in (
            "crm_mon -1 -f -r",
            "corosync-quorumtool -s",
            "journalctl -b -n 60 --no-pager -o short-precise -u pacemaker -u corosync",
        ):
            ok, out = ctx.on(node, command, timeout=20)
            parts.append(f"--- {node}: {command}{'' if ok else ' (failed)'}\n{out.strip()}")
    return "\n".join(parts)


def failover(ctx: LabContext, timeout: float = 90) -> FailoverResult:
    """Hard-kill the VIP's node while probing the VIP; the outage, timed by probe completion."""
    home = vip_node(ctx)
    if home is None:
        raise RuntimeError("no node holds the VIP: is the lab up?")
    try:
        outage, _, _ = measure_outage(ctx, lambda: ctx.lab.containers.kill(home), timeout=timeout)
    except TimeoutError as e:
        raise TimeoutError(f"{e}\n{cluster_report(ctx)}") from e
    ctx.lab.log(f"failover: killed {home} (SIGKILL of its init)")
    now = vip_node(ctx)
    ctx.lab.log(f"failover: VIP served again from {now} after an outage of {outage.seconds:.2f} s")
    return FailoverResult(home, now, outage)


def down(ctx: LabContext, run_deletes: bool = True) -> list[str]:
    """Deletes (newest first, on a running lab), then containers, mounts, namespace and the lab's state."""
    failures: list[str] = []
    if run_deletes and alive_nodes(ctx) and (ctx.lab.state_dir / "outputs.json").exists():
        ctx.lab.log("down: running every step's delete, newest first")
        failures = ctx.lab.run_deletes()
    # The BMCs go before the nodes (none powers a node on behind `down`), frozen nodes are thawed.
    bmc.teardown(ctx.lab.state_dir, ctx.lab.netns)
    for name in ctx.lab.containers.names():
        ctx.lab.containers.stop(name)
        ctx.lab.log(f"down: stopped {name}")
    ctx.lab.containers.remove_groups()
    ctx.apt.stop()
    ctx.network.down()
    for sub in ("nodes", "keys"):
        shutil.rmtree(ctx.lab.state_dir / sub, ignore_errors=True)
    for f in ("state.json", "outputs.json", "fence-password", ctx.apt.log_file.name):
        (ctx.lab.state_dir / f).unlink(missing_ok=True)
    ctx.lab.log("down: no container, mount or namespace of the lab is left")
    return failures


def resource_nodes(ctx: LabContext) -> dict[str, set[str]]:
    """Where each resource runs (clone instances merged), as a live node's Pacemaker sees it."""
    for node in alive_nodes(ctx):
        ok, out = ctx.on(node, "crm_mon -1 --output-as=xml", timeout=15)
        if ok:
            placement: dict[str, set[str]] = {}
            resources = ET.fromstring(out).find("resources")
            for res in resources.iter("resource") if resources is not None else []:
                nodes = placement.setdefault(res.get("id", ""), set())
                if res.get("active") == "true" and res.get("role") == "Started":
                    nodes.update(n.get("name", "") for n in res.findall("node"))
            return placement
    return {}


def fetch(ctx: LabContext, url: str, timeout: float = 2.0) -> str:
    """The body of a GET from inside the lab's namespace ('' when nothing answers)."""
    done = run(in_netns(ctx.lab.netns, ["curl", "-s", "--max-time", str(timeout), url]), timeout=timeout + 5)
    return done.stdout if done.ok else ""


class Backend:
    """An HTTP server on the lab's driver address, for HAProxy to balance to. Stopped by pid."""

    def __init__(self, ctx: LabContext, port: int, directory: Path) -> None:
        argv = [sys.executable, "-m", "http.server", str(port), "--bind", str(ctx.settings.gateway)]
        self.proc = subprocess.Popen(
            in_netns(ctx.lab.netns, [*argv, "--directory", str(directory)]),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# --- fencing -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FenceResult:
    node: str
    by: str
    """The node that ran stonith_admin (the cluster's fencer picks the device and who runs it)."""
    action: str
    seconds: float
    """How long stonith_admin took."""
    went_off: bool
    """The node's container was seen gone (or with a new init) while it ran."""
    back_after: float | None
    """Seconds from the start until the node's container ran again with a new init (reboot), else None."""


class InitWatch:
    """Polls a node's container every 50 ms on a thread: whether it went off (gone, or another init)."""

    def __init__(self, ctx: LabContext, node: str) -> None:
        self.ctx, self.node = ctx, node
        self.before = ctx.lab.containers.init_pid(node)
        self.went_off = False
        self.off_at: float | None = None
        """When (epoch s) it was first seen gone or with another init."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.went_off and self.ctx.lab.containers.init_pid(self.node) != self.before:
                self.went_off, self.off_at = True, time.time()
            self._stop.wait(0.05)

    def rebooted(self) -> bool:
        now = self.ctx.lab.containers.init_pid(self.node)
        return now is not None and now != self.before

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def fence(ctx: LabContext, node: str, action: str = "reboot", back_within: float = 120) -> FenceResult:
    """Fence a node through the cluster (`stonith_admin --reboot`, or `--fence`: off), asked on another node."""
    others = [n for n in alive_nodes(ctx) if n != node]
    if not others:
        raise RuntimeError(f"no other node runs to fence {node} from")
    flag = {"reboot": "--reboot", "off": "--fence"}[action]
    watch = InitWatch(ctx, node)
    started = time.monotonic()
    try:
        ok, out = ctx.on(others[0], f"stonith_admin {flag} {node} --timeout 120", timeout=180)
        took = time.monotonic() - started
        if not ok:
            raise RuntimeError(f"stonith_admin {flag} {node} on {others[0]} failed: {out.strip()}")
        back = None
        if action == "reboot":
            wait_for(f"{node} running again", watch.rebooted, back_within, 0.05)
            back = time.monotonic() - started
        else:
            wait_for(f"{node} off", lambda: not ctx.lab.containers.is_running(node), 10, 0.05)
    finally:
        watch.stop()
    result = FenceResult(node, others[0], action, took, watch.went_off, back)
    ctx.lab.log(
        f"fence: {node} {action} asked on {others[0]}: done in {took:.2f} s; container "
        + ("went off" if result.went_off else "never went off")
        + (f", running again (new init) {back:.2f} s after the request" if back is not None else "")
    )
    return result


def hang(ctx: LabContext, node: str) -> None:
    """Freeze a node: its processes stop where they are, its kernel (addresses, ARP) stays."""
    bmc.freeze(ctx.lab.containers, node)
    ctx.lab.log(f"hang: {node} frozen (processes stopped; its addresses still answer ARP)")


def unhang(ctx: LabContext, node: str) -> None:
    bmc.thaw(ctx.lab.containers, node)
    ctx.lab.log(f"unhang: {node} thawed")


def vip_on(ctx: LabContext, node: str) -> bool:
    """The VIP configured in the node's network namespace, read from its kernel (`/proc/<init>/net/fib_trie`, as
    `ip addr` inside it would say): works on a frozen node, which SSH cannot ask."""
    pid = ctx.lab.containers.init_pid(node)
    if pid is None:
        return False
    try:
        lines = Path(f"/proc/{pid}/net/fib_trie").read_text().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return False
    vip = str(ctx.settings.vip.address)
    return any(line.strip().endswith(f"-- {vip}") and "host LOCAL" in nxt for line, nxt in itertools.pairwise(lines))


@dataclass(frozen=True)
class VipSample:
    at: float
    holders: frozenset[str]
    """ARP: the MACs that answered one request for the VIP; kernel: the running nodes that have it configured."""

    @property
    def duplicate(self) -> bool:
        return len(self.holders) > 1


def _duplicate_seconds(samples: list[VipSample]) -> float:
    """The sum of the intervals that start at a sample where two held the VIP."""
    return sum(b.at - a.at for a, b in itertools.pairwise(samples) if a.duplicate)


class VipWatch:
    """Who holds the VIP, sampled every ~100 ms for the whole run, two ways: the MACs answering a broadcast ARP
    request for it on the bridge (`lab.arpwatch` in the lab's namespace, stopped by pid), and the nodes whose kernel
    has it configured (`vip_on`: also a frozen node's)."""

    def __init__(self, ctx: LabContext, every: float = 0.1) -> None:
        self.ctx, self.every = ctx, every
        self.kernel: list[VipSample] = []
        self.dir = Path(tempfile.mkdtemp(prefix="ha-lb-arp-"))
        argv = [sys.executable, "-m", "lab.arpwatch", "br0", str(ctx.settings.gateway), str(ctx.settings.vip.address)]
        argv += [str(self.dir / "arp"), "--interval", str(every)]
        self.proc = subprocess.Popen(in_netns(ctx.lab.netns, argv), cwd=ROOT, stdin=subprocess.DEVNULL)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.arp: list[VipSample] = []

    def _run(self) -> None:
        nodes = [n.name for n in self.ctx.settings.node_list]
        while not self._stop.is_set():
            at = time.time()
            self.kernel.append(VipSample(at, frozenset(n for n in nodes if vip_on(self.ctx, n))))
            self._stop.wait(max(0.0, self.every - (time.time() - at)))

    def _read_arp(self) -> list[VipSample]:
        path = self.dir / "arp"
        lines = path.read_text().splitlines() if path.exists() else []
        out = []
        for line in lines[:-1]:  # the last line may be half written
            at, _, macs = line.partition(" ")
            out.append(VipSample(float(at), frozenset(m for m in macs.split(",") if m)))
        return out

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.arp = self._read_arp()
        shutil.rmtree(self.dir, ignore_errors=True)

    def duplicate_seconds(self) -> float:
        """How long two nodes held the VIP at once: the longer of what ARP and the kernels tell."""
        return max(_duplicate_seconds(self.arp), _duplicate_seconds(self.kernel))

    def duplicates(self) -> list[VipSample]:
        return [x for x in (*self.arp, *self.kernel) if x.duplicate]

    def summary(self) -> str:
        answered = [s for s in self.arp if s.holders]
        macs = sorted({m for s in self.arp for m in s.holders})
        return (
            f"{len(self.arp)} ARP samples ({len(answered)} answered, MACs seen: {macs}), "
            f"{len(self.kernel)} kernel samples; duplicate VIP: ARP {_duplicate_seconds(self.arp):.2f} s, "
            f"kernel {_duplicate_seconds(self.kernel):.2f} s"
        )


def fencing_journal(ctx: LabContext, node: str, since: float) -> list[str]:
    """The node's pacemaker/corosync journal lines about the lost node and its fencing since `since` (epoch s)."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since - 1))
    ok, out = ctx.on(
        node,
        f"journalctl -u pacemaker -u corosync --no-pager -o short-precise --since {shlex.quote(stamp)}",
        timeout=30,
    )
    keys = ("fenc", "Operation reboot", "Operation off", "lost", "membership", "vip", "A new membership", "quorum")
    return [line for line in out.splitlines() if any(k.lower() in line.lower() for k in keys)] if ok else []


_CUT_TABLE = "halab_cut"


def cut_cluster_link(ctx: LabContext, node: str, *others: str) -> None:
    """Drop corosync's traffic (knet, UDP 5405) between `node` and each of `others` (every other node when none is
    named) on the lab bridge (nft, family bridge): they lose each other while clients reach them all."""
    addr = {n.name: str(n.address) for n in ctx.settings.node_list}
    peers = others or tuple(n for n in addr if n != node)
    drops = [
        f"  ip saddr {addr[x]} ip daddr {addr[y]} udp dport 5405 drop"
        for peer in peers
        for x, y in ((node, peer), (peer, node))
    ]
    _nft(ctx, _CUT_TABLE, "bridge", "forward", drops)


def _nft(ctx: LabContext, table: str, family: str, hook: str, rules: list[str]) -> None:
    """Add a table of drop rules in the lab's namespace (added to, when it exists)."""
    lines = [
        f"table {family} {table} {{",
        f" chain {hook} {{",
        f"  type filter hook {hook} priority 0; policy accept;",
        *rules,
        " }",
        "}",
    ]
    text = "\n".join(lines) + "\n"
    done = subprocess.run(in_netns(ctx.lab.netns, ["nft", "-f", "-"]), input=text, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"nft: {done.stderr.strip()}")


def _nft_delete(ctx: LabContext, family: str, table: str) -> None:
    """Remove a table `_nft` added (nothing to do when it is not there)."""
    subprocess.run(in_netns(ctx.lab.netns, ["nft", "delete", "table", family, table]), capture_output=True, text=True)


def restore_cluster_link(ctx: LabContext) -> None:
    _nft_delete(ctx, "bridge", _CUT_TABLE)


_BMC_CUT_TABLE = "halab_bmc_cut"


def cut_bmc(ctx: LabContext, node: str) -> None:
    """Make a node's BMC unreachable: its IPMI traffic (UDP 623 to its address, which the lab's namespace holds) is
    dropped, as when a management network fails; the BMC itself runs on, and no answer ever comes back."""
    ipmi = ctx.settings.cluster.fencing.ipmi
    if ipmi is None or node not in ipmi.addresses:
        raise RuntimeError(f"{node} has no BMC in this stack (cluster.fencing.ipmi.addresses)")
    _nft(ctx, _BMC_CUT_TABLE, "inet", "input", [f"  ip daddr {ipmi.addresses[node]} udp dport {ipmi.port} drop"])


def restore_bmcs(ctx: LabContext) -> None:
    _nft_delete(ctx, "inet", _BMC_CUT_TABLE)


def cut_vrrp_link(ctx: LabContext, a: str, b: str) -> None:
    """keepalived's cluster link cut: VRRP (IP protocol 112, its unicast adverts) dropped between two nodes on the lab
    bridge, in `cut_cluster_link`'s table (`restore_cluster_link` restores it), while clients reach both."""
    addr = {n.name: str(n.address) for n in ctx.settings.node_list}
    drops = [f"  ip saddr {addr[x]} ip daddr {addr[y]} ip protocol 112 drop" for x, y in ((a, b), (b, a))]
    _nft(ctx, _CUT_TABLE, "bridge", "forward", drops)
