"""The lab engine: the program's own resources, realized on real nodes in the order the runtime registers them.

- libvirt providers, volumes and networks: the lab's image and network stand in for them.
- a CloudInitDisk + Domain: a node container with that seed and the domain's MAC (`nodes.py`).
- a `remote.Command`: its `create` over real SSH with its own connection and stdin (`ssh.py`); a failure fails
  the registration with node, step and output, and nothing that depends on it runs.
- pulumi-random passwords and pulumi-tls keys: real values, kept in the lab's state so a second `up` reuses them.

Like `pulumi up`, a resource whose inputs did not change is not touched again (`rerun` runs every step's create
anyway, to prove they are safe twice). The state file records what was applied, so `down` runs the deletes in
reverse order.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import string
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

import pulumi
import yaml
from pulumi.runtime import mocks as pmocks

from procs.runner import Completed, Runner, run

from . import bmc
from .nodes import Containers, NodeSeed, netns_for
from .program import OutputsMonitor, evaluate, unwrap
from .ssh import Connection, Ssh

Log = Callable[[str], None]

PARALLEL = 4 * (os.cpu_count() or 1)
"""Resource operations at once, as `pulumi up`'s default `--parallel` (4 x CPUs): each runs on one of the engine's
workers until done, a replacement's whole chain (its dependents' deletes, the old resource's delete, the create) on
one. The program keeps more registrations in flight (`components/registrations.py`)."""


@dataclass
class LabState:
    """What the lab applied, by resource key (`type::name`), in the order it was applied."""

    path: Path
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> LabState:
        data = json.loads(path.read_text()) if path.exists() else {}
        return cls(path, data.get("resources", {}))

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # It holds the generated secrets, as Pulumi's state does: readable by root only.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".state-")
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"resources": self.resources}, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _failure(what: str, done: Completed) -> str:
    """A failed remote command, as pulumi-command reports it: its output (the end of stderr), never its stdin."""
    return f"{what} exited {done.returncode}:\n{done.stderr.strip()[-3000:]}"


def _password(length: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _ed25519_openssh() -> tuple[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ha-lb-lab", "-f", str(key)], check=True)
        return key.read_text(), (key.with_suffix(".pub")).read_text().strip()


@dataclass(frozen=True)
class Resource:
    name: str
    id: str
    replaced: bool
    """Replaced rather than updated: Pulumi deletes the old one (and what must go with it) and creates it anew."""


_KEPT = {"random:index/randomPassword:RandomPassword", "tls:index/privateKey:PrivateKey", "pulumi:providers:libvirt"}


def _replaced(typ: str, previous: dict[str, Any], inputs: dict[str, Any]) -> bool:
    """Whether Pulumi would replace this resource: a step when its triggers change (other changes run its create
    again, pulumi-command's update without an `update` command); a libvirt object when any input changes (every
    field of terraform-provider-libvirt 0.8.1's volumes, cloud-init disks and domains the program sets forces a new
    one); generated secrets and providers never, here."""
    if typ in _KEPT:
        return False
    if typ == "command:remote:Command":
        return "triggers" in previous and previous["triggers"] != list(inputs.get("triggers") or [])
    return bool(previous["inputs"] != _digest(inputs))


class LabMonitor(OutputsMonitor):
    """The mock monitor, also noting what each resource is deleted with (`MockResourceArgs` does not say)."""

    def __init__(self, mocks: LabMocks) -> None:
        super().__init__(mocks)
        self.lab_mocks = mocks

    def RegisterResource(self, request: Any) -> Any:
        if request.deletedWith:
            self.lab_mocks.deleted_with[request.name] = request.deletedWith.rsplit("::", 1)[-1]
        return super().RegisterResource(request)  # type: ignore[no-untyped-call]


class LabMocks(pulumi.runtime.Mocks):
    def __init__(self, lab: Lab, rerun: bool) -> None:
        self.lab = lab
        self.rerun = rerun
        self.lock = threading.Lock()
        self.disks: dict[str, dict[str, Any]] = {}
        self.node_at: dict[str, str] = {}  # node address -> node name, from the program's network-config
        self.seen: set[str] = set()  # resources the program declared in this run
        self.recorded: set[str] = set()  # resources realized (or found unchanged) in this run
        self.deleted_with: dict[str, str] = {}  # resource name -> the name of what it is deleted with
        self.workers = threading.BoundedSemaphore(PARALLEL)

    def call(self, args: pmocks.MockCallArgs) -> tuple[dict[Any, Any], Optional[list[tuple[str, str]]]]:
        raise NotImplementedError(f"the lab does not provide {args.token}")

    def new_resource(self, args: pmocks.MockResourceArgs) -> tuple[Optional[str], dict[Any, Any]]:
        key = f"{args.typ}::{args.name}"
        inputs = unwrap(args.inputs)
        with self.lock:
            previous = self.lab.state.resources.get(key)
            self.seen.add(key)
        replaced = previous is not None and _replaced(args.typ, previous, inputs)
        # A replacement is a new resource with a new id, as a provider's: what names the old id (a step's
        # triggers, a domain's disks) sees the change.
        gen = int(previous.get("gen", 0)) + (1 if replaced else 0) if previous else 0
        resource_id = f"{args.name}-lab" + (f"-{gen}" if gen else "")
        handler = {
            "random:index/randomPassword:RandomPassword": self._password,
            "tls:index/privateKey:PrivateKey": self._private_key,
            "libvirt:index/cloudInitDisk:CloudInitDisk": self._cloud_init_disk,
            "libvirt:index/domain:Domain": self._domain,
            "command:remote:Command": self._command,
        }.get(args.typ, self._stand_in)
        with self.workers:
            outputs = handler(Resource(args.name, resource_id, replaced), inputs, previous)
        record: dict[str, Any] = {
            "id": resource_id,
            "gen": gen,
            "inputs": _digest(inputs),
            "outputs": outputs,
            "order": time.monotonic(),
            "deleted_with": self.deleted_with.get(args.name),
        }
        if args.typ == "command:remote:Command":
            record["triggers"] = list(inputs.get("triggers") or [])
            if inputs.get("delete"):
                record["delete"] = {"command": inputs["delete"], "connection": inputs["connection"]}
        if args.typ == "libvirt:index/domain:Domain":
            record["node"] = outputs["node"]
        with self.lock:
            base = {} if replaced or previous is None else previous
            base.pop("delete", None)  # a step without a delete now has none to run
            self.lab.state.resources[key] = {**base, **record}
            self.recorded.add(key)
            self.lab.state.save()
        return resource_id, {**args.inputs, **outputs}

    # --- stand-ins and secrets -------------------------------------------------------------------------------

    def _stand_in(self, r: Resource, inputs: dict[str, Any], previous: Optional[dict[str, Any]]) -> dict[str, Any]:
        return {}  # providers, the base volume, disks, networks: the lab's image and bridge take their place

    def _password(self, r: Resource, inputs: dict[str, Any], previous: Optional[dict[str, Any]]) -> dict[str, Any]:
        if previous:
            return dict(previous["outputs"])
        return {"result": _password(int(inputs.get("length", 32)))}

    def _private_key(self, r: Resource, inputs: dict[str, Any], previous: Optional[dict[str, Any]]) -> dict[str, Any]:
        if previous:
            return dict(previous["outputs"])
        private, public = _ed25519_openssh()
        return {"privateKeyOpenssh": private, "publicKeyOpenssh": public + "\n"}

    # --- nodes -----------------------------------------------------------------------------------------------

    def _cloud_init_disk(
        self, r: Resource, inputs: dict[str, Any], previous: Optional[dict[str, Any]]
    ) -> dict[str, Any]:
        with self.lock:
            self.disks[r.id] = inputs
        return {}

    def _domain(self, r: Resource, inputs: dict[str, Any], previous: Optional[dict[str, Any]]) -> dict[str, Any]:
        disk = self.disks[inputs["cloudinit"]]
        node = yaml.safe_load(disk["metaData"])["local-hostname"]
        seed = NodeSeed(
            name=node,
            mac=inputs["networkInterfaces"][0]["mac"],
            user_data=disk["userData"],
            meta_data=disk["metaData"],
            network_config=disk["networkConfig"],
        )
        for ethernet in yaml.safe_load(seed.network_config)["ethernets"].values():
            for address in ethernet.get("addresses", []):
                self.node_at[address.split("/")[0]] = node
        if r.replaced and previous is not None:
            self._delete_dependents(r.name, previous["id"])
        changed = previous is None or r.replaced
        running = self.lab.containers.is_running(node)
        if running and not changed:
            self.lab.log(f"  skip {'':>6}  {r.name} ({node} running, unchanged)")
        else:
            started = time.monotonic()
            if running:
                self.lab.containers.stop(node)
            # A new domain gets a new disk; a stopped one boots again from its own (as after a refresh).
            self.lab.containers.start(self.lab.rootfs, seed, fresh_disk=changed, apt_source=self.lab.apt_source)
            self.lab.log(f"  ok   {time.monotonic() - started:5.1f}s  {r.name} (node {node} booting)")
        plan = self.lab.bmcs
        if plan is not None and node in plan.addresses:
            # The node's BMC, on every pass (left alone when unchanged and running): records how its node boots.
            control = bmc.lab_power_control(self.lab.state_dir, self.lab.rootfs, seed, self.lab.apt_source)
            bmc.Bmcs(self.lab.state_dir, self.lab.netns).start(
                node, plan.addresses[node], plan.user, plan.password, control
            )
        return {"node": node}

    # --- remote steps ----------------------------------------------------------------------------------------

    def _delete_dependents(self, name: str, old_id: str) -> None:
        """Pulumi's delete-before-replace: before the old resource goes, every step that names it in its triggers
        (and so is replaced with it) is deleted, newest first, one after another; a step deleted with the resource
        itself (`deleted_with`) is dropped without running its delete. A failed delete fails the replacement, the
        old resource kept."""
        with self.lock:
            dependents = sorted(
                ((k, rec) for k, rec in self.lab.state.resources.items() if old_id in rec.get("triggers", [])),
                key=lambda kr: -float(kr[1]["order"]),
            )
        for key, record in dependents:
            step = key.split("::", 1)[1]
            delete = record.get("delete")
            if delete and record.get("deleted_with") != name:
                started = time.monotonic()
                done = self.lab.ssh.exec(self.lab.connection(delete["connection"]), delete["command"], timeout=3600)
                took = time.monotonic() - started
                self.lab.log(f"  {'ok  ' if done.ok else 'FAIL'} {took:5.1f}s  delete {step} (replacing {name})")
                if not done.ok:
                    raise RuntimeError(_failure(f"delete {step} (replacing {name})", done))
            with self.lock:
                del self.lab.state.resources[key]
                self.lab.state.save()

    def _command(self, r: Resource, inputs: dict[str, Any], previous: Optional[dict[str, Any]]) -> dict[str, Any]:
        conn = self.lab.connection(inputs["connection"])
        name = r.name
        if previous is not None and not r.replaced and previous["inputs"] == _digest(inputs) and not self.rerun:
            self.lab.log(f"  skip {'':>6}  {name} ({conn.host}, unchanged)")
            return dict(previous["outputs"])
        delete = (previous or {}).get("delete")
        if r.replaced and delete:
            # Replaced (its triggers changed), delete first: the old step's own delete, then the create.
            done = self.lab.ssh.exec(self.lab.connection(delete["connection"]), delete["command"], timeout=3600)
            if not done.ok:
                raise RuntimeError(_failure(f"delete {name} (replacing it)", done))
        started = time.monotonic()
        done = self.lab.ssh.exec(conn, inputs["create"], stdin=inputs.get("stdin"))
        took = time.monotonic() - started
        if not done.ok:
            self.lab.log(f"  FAIL {took:5.1f}s  {name} ({conn.host})")
            message = _failure(f"{name} on {conn.host}", done)
            node = self.node_at.get(conn.host)
            if done.returncode == 255 and node:
                # SSH never got in: what the node's console says is what tells why.
                message += f"\n--- {node}'s console, last lines ---\n{self.lab.containers.console_tail(node)}"
            raise RuntimeError(message)
        self.lab.log(f"  ok   {took:5.1f}s  {name} ({conn.host})")
        with self.lock:
            self.lab.step_spans[name] = (started - self.lab.applied_at, started + took - self.lab.applied_at)
        return {"stdout": done.stdout, "stderr": done.stderr}


@dataclass(frozen=True)
class BmcPlan:
    """The nodes' BMCs the lab runs (`bmc.py`), as the stack's fence_ipmilan devices reach them."""

    user: str
    password: str
    addresses: dict[str, str]
    """By node name."""


class Lab:
    """The lab in `state_dir`: its state file, SSH keys and node disks."""

    def __init__(self, state_dir: Path, rootfs: Path, log: Log = print, runner: Runner = run) -> None:
        self.state_dir = state_dir
        self.rootfs = rootfs
        self.apt_source: Optional[str] = None
        """Each node's APT source, written into its disk when it starts (`apt_repo.source_line`)."""
        self.bmcs: Optional[BmcPlan] = None
        """The BMCs to run, one per node (None: the stack does not fence through BMCs)."""
        self.log = log
        self.state = LabState.load(state_dir / "state.json")
        self.step_spans: dict[str, tuple[float, float]] = {}
        """When each remote step's create started and ended, in seconds from the start of the last `apply`."""
        self.applied_at = time.monotonic()
        self.netns = netns_for(state_dir)
        self.containers = Containers(state_dir, self.netns, runner)
        self.ssh = Ssh(state_dir / "keys", self.netns, runner)

    @property
    def step_seconds(self) -> dict[str, float]:
        """How long each remote step's create took, in the last `apply`."""
        return {name: end - start for name, (start, end) in self.step_spans.items()}

    @staticmethod
    def connection(conn: dict[str, Any]) -> Connection:
        return Connection(
            host=conn["host"],
            user=conn.get("user", "root"),
            port=int(conn.get("port", 22)),
            private_key=conn["privateKey"],
            dial_error_limit=int(conn.get("dialErrorLimit", 10)),
            per_dial_timeout=int(conn.get("perDialTimeout", 15)),
            host_key=conn.get("hostKey"),
        )

    def fence_password(self) -> str:
        """The lab's BMC password (the stack's secret `fencePassword`): random, made once per state directory and
        kept there, root only."""
        path = self.state_dir / "fence-password"
        if not path.exists():
            self.state_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(_password(16))  # fence_ipmilan: 1-20 characters
        return path.read_text()

    def apply(
        self, config: dict[str, Any], rerun: bool = False, secret_keys: Sequence[str] = ()
    ) -> tuple[dict[str, Any], Optional[BaseException]]:
        """Evaluate the program with the lab stack's config (`secret_keys`: the keys set as secrets) and realize
        every resource; returns the outputs."""
        self.step_spans = {}
        self.applied_at = time.monotonic()
        self.state = LabState.load(self.state.path)  # the file is the truth: another run may have changed it
        mocks = LabMocks(self, rerun)
        monitor = LabMonitor(mocks)
        error = evaluate(config, mocks, monitor, secret_keys=secret_keys, stack="lab")
        if error is None:
            error = self.remove_undeclared(mocks.seen)
        else:
            self.after_failure(mocks.recorded)
        return unwrap(monitor.stack_outputs), error

    def after_failure(self, recorded: set[str]) -> None:
        """After a failed run: what it did not realize (what failed, and what it never reached, which depends on
        that or came later) comes after what it did, in the order it had, so deletes (newest first) still undo
        dependents before their dependencies."""
        now = time.monotonic()
        rest = sorted((k for k in self.state.resources if k not in recorded), key=lambda k: self._order(k))
        for i, key in enumerate(rest):
            self.state.resources[key]["order"] = now + i * 1e-6
        if rest:
            self.state.save()

    def _order(self, key: str) -> float:
        return float(self.state.resources[key]["order"])

    def remove_undeclared(self, declared: set[str]) -> Optional[BaseException]:
        """What the program no longer declares goes, as `pulumi up` deletes it: newest first, each step's delete run,
        except when what it is deleted with goes too (`deleted_with`: its node's VM, for most); then the node."""
        gone = {k: r for k, r in self.state.resources.items() if k not in declared}
        gone_names = {k.split("::", 1)[1] for k in gone}
        nodes = [r["node"] for r in gone.values() if "node" in r]
        for key, record in sorted(gone.items(), key=lambda kr: -float(kr[1]["order"])):
            name = key.split("::", 1)[1]
            delete = record.get("delete")
            if delete and record.get("deleted_with") not in gone_names:
                started = time.monotonic()
                done = self.ssh.exec(self.connection(delete["connection"]), delete["command"], timeout=600)
                self.log(f"  {'ok  ' if done.ok else 'FAIL'} {time.monotonic() - started:5.1f}s  delete {name}")
                if not done.ok:
                    return RuntimeError(_failure(f"delete {name}", done))
            del self.state.resources[key]
            self.state.save()
        for node in nodes:
            # Its BMC first (none powers it on again), thawed (a frozen node stops cleanly), then the node.
            bmc.Bmcs(self.state_dir, self.netns).stop(node)
            bmc.thaw(self.containers, node)
            self.containers.stop(node)
            shutil.rmtree(self.containers.node_dir(node), ignore_errors=True)
            self.log(f"  ok   {'':>6}  node {node} removed")
        return None

    def run_deletes(self) -> list[str]:
        """Every applied step's delete, newest first; returns the ones that failed (the rest still run)."""
        failures = []
        gone: set[str] = set()
        steps = sorted(
            ((k, r) for k, r in self.state.resources.items() if "delete" in r), key=lambda kr: -float(kr[1]["order"])
        )
        steps_by_name = {k.split("::", 1)[1] for k, _ in steps}
        for key, record in steps:
            # A node that does not answer is gone with everything on it (as `deleted_with` its VM): no long dialling.
            conn = replace(self.connection(record["delete"]["connection"]), dial_error_limit=2, per_dial_timeout=3)
            name = key.split("::", 1)[1]
            if record.get("deleted_with") in steps_by_name:
                # Deleted with another step (a node's leave, with the cluster's setup): `pulumi destroy` skips it.
                self.log(f"  skip {'':>6}  delete {name} (goes with {record['deleted_with']})")
                continue
            if conn.host in gone:
                self.log(f"  skip {'':>6}  delete {name} ({conn.host} does not answer)")
                continue
            started = time.monotonic()
            done = self.ssh.exec(conn, record["delete"]["command"], timeout=300)
            if done.returncode == 255:
                gone.add(conn.host)
                self.log(f"  skip {time.monotonic() - started:5.1f}s  delete {name} ({conn.host} does not answer)")
                continue
            self.log(
                f"  {'ok  ' if done.ok else 'FAIL'} {time.monotonic() - started:5.1f}s  delete {name} ({conn.host})"
            )
            if not done.ok:
                failures.append(f"{name}: {done.tail(3)}")
            else:
                del self.state.resources[key]["delete"]
                self.state.save()
        return failures

    def nodes(self) -> list[str]:
        return sorted(r["node"] for r in self.state.resources.values() if "node" in r)
