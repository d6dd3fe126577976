"""pcs 0.11 command lines as argv lists.

Pure: builds `list[str]`; quoting happens once, where a script is assembled (`plan.py`). Each builder names the
pcs command it makes; none runs anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

PCS = "pcs"
# Meta attribute holding a fingerprint of the resource's desired definition: a re-run whose fingerprint matches
# changes nothing (pcs would rewrite an unchanged resource otherwise). Pacemaker ignores unknown meta attributes.
SPEC_META = "ha-lb-spec"


@dataclass(frozen=True)
class Op:
    """A resource operation, e.g. `op monitor interval=10s timeout=20s on-fail=restart`."""

    name: str
    options: Mapping[str, str]

    def argv(self) -> list[str]:
        return [self.name, *(f"{k}={v}" for k, v in self.options.items())]


@dataclass(frozen=True)
class Primitive:
    """A primitive resource (or fencing device when `agent` has no class prefix and `stonith` is set)."""

    id: str
    agent: str
    params: Mapping[str, str | None]
    """Agent parameters; None means 'not set' (an update removes it)."""
    ops: Sequence[Op] = ()
    meta: Mapping[str, str] = field(default_factory=dict)
    clone: bool = False
    stonith: bool = False

    @property
    def top_id(self) -> str:
        """The id constraints and enable/disable name: the clone's for a cloned primitive."""
        return f"{self.id}-clone" if self.clone else self.id

    def set_params(self) -> list[str]:
        return [f"{k}={v}" for k, v in self.params.items() if v is not None]

    def ops_argv(self) -> list[str]:
        out: list[str] = []
        for op in self.ops:
            out += ["op", *op.argv()]
        return out


def host_auth(nodes: Sequence[tuple[str, str]], user: str = "hacluster") -> list[str]:
    """`pcs host auth n1 addr=A ... -u hacluster`: the password is read from stdin, never argv."""
    argv = [PCS, "host", "auth"]
    for name, addr in nodes:
        argv += [name, f"addr={addr}"]
    return [*argv, "-u", user]


def host_deauth(names: Sequence[str]) -> list[str]:
    return [PCS, "host", "deauth", *names]


def cluster_setup(
    name: str,
    nodes: Sequence[tuple[str, str]],
    token_ms: int,
    knet_ping: tuple[int, int],
    corosync_conf: str | None = None,
) -> list[str]:
    """`pcs cluster setup NAME n1 addr=A ... transport knet link linknumber=0 ping_interval=MS ping_timeout=MS
    totem token=MS token_coefficient=0`; knet keeps pcs's default crypto. token_coefficient 0 keeps the token as
    given at every cluster size; `knet_ping` is link 0's (interval, timeout). `corosync_conf`: only write that file."""
    argv = [PCS, "cluster", "setup", name]
    for node, addr in nodes:
        argv += [node, f"addr={addr}"]
    interval, timeout = knet_ping
    argv += ["transport", "knet", "link", "linknumber=0", f"ping_interval={interval}", f"ping_timeout={timeout}"]
    argv += ["totem", f"token={token_ms}", "token_coefficient=0"]
    if corosync_conf is not None:
        argv += ["--corosync_conf", corosync_conf]
    return argv


def cluster_node_add(name: str, addr: str, wait_s: int) -> list[str]:
    """`pcs cluster node add`, run on a member: pcs copies corosync.conf, the keys and pcsd's tokens to the new node,
    sets two_node right for the new count, and starts and enables the cluster there."""
    return [PCS, "cluster", "node", "add", name, f"addr={addr}", "--start", f"--wait={wait_s}", "--enable"]


def cluster_node_remove(name: str, skip_offline: bool = True) -> list[str]:
    """`pcs cluster node remove`: stops the cluster on the node and takes it out of corosync.conf everywhere; with
    `skip_offline` a node that does not answer is skipped (it then keeps the old corosync.conf), but quorum loss is
    still refused."""
    return [PCS, "cluster", "node", "remove", name, *(["--skip-offline"] if skip_offline else [])]


def node_standby(name: str, wait_s: int) -> list[str]:
    """`pcs node standby --wait`: the node's resources move to other nodes; returns once they have."""
    return [PCS, "node", "standby", name, f"--wait={wait_s}"]


def node_unstandby(name: str) -> list[str]:
    return [PCS, "node", "unstandby", name]


def cluster_start_all() -> list[str]:
    # Without --wait: pcs polls each node through pcsd every 2 s after a first 2 s sleep (the step waits itself).
    return [PCS, "cluster", "start", "--all"]


def cluster_enable_all() -> list[str]:
    return [PCS, "cluster", "enable", "--all"]


def cluster_stop_all() -> list[str]:
    return [PCS, "cluster", "stop", "--all"]


def cluster_disable_all() -> list[str]:
    return [PCS, "cluster", "disable", "--all"]


def cluster_destroy_all() -> list[str]:
    # --force answers the confirmation pcs asks for when it has no terminal.
    return [PCS, "cluster", "destroy", "--all", "--force"]


def totem_update(token_ms: int | None) -> list[str]:
    """`pcs cluster config update totem token=MS token_coefficient=0` (None: both back to corosync's defaults)."""
    if token_ms is None:
        return [PCS, "cluster", "config", "update", "totem", "token=", "token_coefficient="]
    return [PCS, "cluster", "config", "update", "totem", f"token={token_ms}", "token_coefficient=0"]


def corosync_reload() -> list[str]:
    return [PCS, "cluster", "reload", "corosync"]


def property_set(props: Mapping[str, str]) -> list[str]:
    return [PCS, "property", "set", *(f"{k}={v}" for k, v in props.items())]


def property_unset(names: Sequence[str]) -> list[str]:
    return [PCS, "property", "unset", *names]


def resource_defaults_update(meta: Mapping[str, str]) -> list[str]:
    """`pcs resource defaults update k=v ...` (an empty value removes the default)."""
    return [PCS, "resource", "defaults", "update", *(f"{k}={v}" for k, v in meta.items())]


def primitive_create(p: Primitive, disabled: bool = False) -> list[str]:
    kind = "stonith" if p.stonith else "resource"
    argv = [PCS, kind, "create", p.id, p.agent, *p.set_params(), *p.ops_argv()]
    if p.meta:
        argv += ["meta", *(f"{k}={v}" for k, v in p.meta.items())]
    if p.clone:
        argv.append("clone")
    if disabled:
        argv.append("--disabled")
    return argv


def primitive_update(p: Primitive) -> list[str]:
    """`pcs resource update`: sets every parameter, removes the unset ones, replaces the listed ops."""
    kind = "stonith" if p.stonith else "resource"
    params = [f"{k}={'' if v is None else v}" for k, v in p.params.items()]
    return [PCS, kind, "update", p.id, *params, *p.ops_argv()]


def resource_meta(resource_id: str, meta: Mapping[str, str]) -> list[str]:
    return [PCS, "resource", "meta", resource_id, *(f"{k}={v}" for k, v in meta.items())]


def resource_delete(resource_id: str, stonith: bool = False) -> list[str]:
    return [PCS, "stonith" if stonith else "resource", "delete", resource_id]


def resource_enable(resource_id: str) -> list[str]:
    return [PCS, "resource", "enable", resource_id]


def resource_disable(resource_id: str) -> list[str]:
    return [PCS, "resource", "disable", resource_id]


def constraint_delete(cid: str) -> list[str]:
    return [PCS, "constraint", "delete", cid]


def qdevice_destroy() -> list[str]:
    """`pcs qdevice destroy net`: stops and disables qnetd, deletes its certificates."""
    return [PCS, "qdevice", "destroy", "net"]


def quorum_device_add(
    host: str, algorithm: str, timeout_ms: int, heuristic: str | None = None, corosync_conf: str | None = None
) -> list[str]:
    """`pcs quorum device add timeout=MS model net host=H algorithm=A [heuristics mode=sync exec_vip=CMD]`: pcs signs
    each node's qdevice certificate through the arbiter's pcsd, writes the device into corosync.conf everywhere
    (dropping two_node), and starts and enables corosync-qdevice on every node. `timeout`: corosync-qdevice beats
    to qnetd every 0.8 x it, and qnetd drops a silent node after 1.5 beats. `heuristic`: a command that passes only
    where it should win a tie, run by corosync-qdevice at each membership change (`mode=sync`)."""
    argv = [PCS, "quorum", "device", "add", f"timeout={timeout_ms}"]
    argv += ["model", "net", f"host={host}", f"algorithm={algorithm}"]
    if heuristic is not None:
        argv += ["heuristics", "mode=sync", f"exec_vip={heuristic}"]
    if corosync_conf is not None:
        argv += ["--corosync_conf", corosync_conf]
    return argv


def quorum_device_update_timeout(timeout_ms: int) -> list[str]:
    return [PCS, "quorum", "device", "update", f"timeout={timeout_ms}"]


def quorum_device_remove() -> list[str]:
    """`pcs quorum device remove`: stops and disables corosync-qdevice everywhere, restores two_node if 2 nodes."""
    return [PCS, "quorum", "device", "remove"]
