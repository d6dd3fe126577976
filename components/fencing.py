"""Fencing as data: for each node, the device that powers it off, where its secret lives on the nodes, and how to
prove the device works. Pure: no Pulumi import.

One device per node, named `fence-<node>`, never run by the node it fences. Secrets never reach the CIB, a command
line or a log: each node holds them in root-only files under /etc/ha-lb/fence (fed on stdin by `fence-secret-<node>`),
and the device names the file (`identity_file`, `password_script`, `key_file`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from .settings import Node, Settings

FENCE_DIR = "/etc/ha-lb/fence"
SSH_KEY_FILE = f"{FENCE_DIR}/id_ssh"
PASSWORD_FILE = f"{FENCE_DIR}/password"
PASSWORD_SCRIPT = f"{FENCE_DIR}/password.sh"
XVM_KEY_FILE = "/etc/cluster/fence_xvm.key"  # where fence_xvm looks for it (fence_virtd: /etc/fence_virt.key)


class FenceSecret(StrEnum):
    """The secret a node needs to run the stack's devices (its config key)."""

    SSH_KEY = "fenceSshKey"
    PASSWORD = "fencePassword"
    XVM_KEY = "fenceXvmKey"


@dataclass(frozen=True)
class FenceDevice:
    id: str
    agent: str
    node: str
    """The node it fences."""
    params: dict[str, str]
    """Agent parameters, secrets by file only. Never `plug`: Pacemaker passes the agent `port=<host>` (from
    `pcmk_host_map`), and an agent given both takes whichever comes last, in an order nothing fixes."""
    plug: str | None
    """The agent's name for the node (its libvirt domain), or None when the device serves one node (a BMC)."""
    checked_from: str
    """A node other than the fenced one, where `fence-check-<node>` asks the device for the node's power status."""


def domain_name(s: Settings, node: Node) -> str:
    """The node's libvirt domain (components/vm.py names it so)."""
    return f"{s.cluster.name}-{node.name}"


def secret_for(s: Settings) -> FenceSecret:
    return {
        "fence_virsh": FenceSecret.SSH_KEY,
        "fence_ipmilan": FenceSecret.PASSWORD,
        "fence_xvm": FenceSecret.XVM_KEY,
    }[s.cluster.fencing.agent]


def hypervisor_login(s: Settings, node: Node) -> tuple[str, str]:
    """(user, address) fence_virsh logs in with to reach the node's hypervisor."""
    v = s.cluster.fencing.virsh
    uri = urlsplit(node.host_uri)
    user = v.user or uri.username or "root"
    address = v.address or uri.hostname or str(s.gateway)  # a local URI: the host, seen from its NAT network
    return user, address


def _params(s: Settings, node: Node) -> dict[str, str]:
    f = s.cluster.fencing
    if f.agent == "fence_virsh":
        user, address = hypervisor_login(s, node)
        params = {"ip": address, "username": user, "identity_file": SSH_KEY_FILE}
        if user != "root":
            params["use_sudo"] = "1"  # virsh as another user would open that user's session daemon
        return params
    if f.agent == "fence_xvm":
        return {"key_file": XVM_KEY_FILE}
    assert f.ipmi is not None  # validated
    params = {"ip": str(f.ipmi.addresses[node.name]), "username": f.ipmi.user, "password_script": PASSWORD_SCRIPT}
    if f.ipmi.lanplus:
        params["lanplus"] = "1"
    if f.ipmi.port != 623:
        params["ipport"] = str(f.ipmi.port)
    return params


def fence_devices(s: Settings) -> list[FenceDevice]:
    """A device per node when fencing is on; none when it is off."""
    if not s.stonith_enabled:
        return []
    nodes = s.node_list
    return [
        FenceDevice(
            id=f"fence-{node.name}",
            agent=s.cluster.fencing.agent,
            node=node.name,
            params=_params(s, node),
            plug=None if s.cluster.fencing.agent == "fence_ipmilan" else domain_name(s, node),
            checked_from=nodes[(i + 1) % len(nodes)].name,
        )
        for i, node in enumerate(nodes)
    ]


def fence_packages(s: Settings) -> list[str]:
    """What the nodes install to run the devices."""
    if not s.stonith_enabled:
        return []
    return {
        "fence_virsh": ["fence-agents", "openssh-client"],
        "fence_ipmilan": ["fence-agents", "ipmitool"],
        "fence_xvm": ["fence-virt"],
    }[s.cluster.fencing.agent]
