"""Rendering of the files a node receives: cloud-init user-data, meta-data, network-config, haproxy.cfg.

Pure and deterministic (no timestamps, stable order): unchanged settings render the same bytes, so Pulumi sees
no change.
"""

from __future__ import annotations

import re
from pathlib import Path

import jinja2

from .fencing import fence_packages
from .host_keys import HostKey
from .settings import Node, Settings, stats_password_problem

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

# Packages every node needs; the lab's node image is built from this list too.
BASE_PACKAGES = (
    "pacemaker",
    "pacemaker-cli-utils",
    "corosync",
    # Always, not only with a quorum device: turning one on or off then replaces no VM (a new package list would),
    # and a node joining a cluster that has one finds its certificate tool.
    "corosync-qdevice",
    "pcs",
    "haproxy",
    "resource-agents",
    "curl",
    "sudo",
)

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)


_env.tests["fqdn"] = lambda host: _is_fqdn(host)


# The quorum device's arbiter: qnetd, and pcsd to sign the nodes' certificates (its hacluster user comes with
# pacemaker-common).
ARBITER_PACKAGES = ("corosync-qnetd", "pcs", "pacemaker-common", "curl", "sudo")


def node_packages(s: Settings) -> list[str]:
    """Debian packages a node installs: the cluster stack plus what the fencing agent and the user ask for."""
    wanted = [*BASE_PACKAGES, *fence_packages(s), *s.cloud_init.extra_packages]
    return list(dict.fromkeys(wanted))


def vm_packages(s: Settings, vm: Node) -> list[str]:
    """What this VM installs at first boot: a node's packages, or the arbiter's."""
    if s.arbiter is not None and vm.name == s.arbiter.name:
        return list(dict.fromkeys([*ARBITER_PACKAGES, *s.cloud_init.extra_packages]))
    return node_packages(s)


def every_package(s: Settings) -> list[str]:
    """Every package some VM of the stack installs (the lab's APT repository serves them all)."""
    return list(dict.fromkeys(p for vm in s.vms for p in vm_packages(s, vm)))


def render_user_data(s: Settings, node: Node, admin_public_key: str, host_key: HostKey) -> str:
    """cloud-init user-data: admin user and keys, the node's SSH host key, packages, /etc/hosts with its own name,
    optional SSH CA, cluster services off. Nothing about other nodes: a change here replaces this node's VM."""
    keys = [admin_public_key.strip(), *(k.strip() for k in s.ssh.authorized_keys)]
    return _env.get_template("user-data.yaml.j2").render(
        node=node,
        cluster_name=s.cluster.name,
        admin_user=s.ssh.user,
        authorized_keys=list(dict.fromkeys(keys)),
        timezone=s.cloud_init.timezone,
        locale=s.cloud_init.locale,
        package_update=s.package_update,
        package_upgrade=s.cloud_init.package_upgrade,
        packages=vm_packages(s, node),
        packages_in_image=s.cloud_init.packages_in_image,
        ssh_ca_public_key=s.ssh.ca_public_key.strip() if s.ssh.ca_public_key else None,
        host_key=host_key,
    )


def render_meta_data(s: Settings, node: Node) -> str:
    """NoCloud meta-data; the instance id is stable so a new ISO alone does not re-run cloud-init."""
    return _env.get_template("meta-data.yaml.j2").render(node=node, instance_id=f"{s.cluster.name}-{node.name}")


def render_network_config(s: Settings, node: Node) -> str:
    """Network config v2: the static address on the NIC matched by the node's MAC."""
    return _env.get_template("network-config.yaml.j2").render(
        node=node,
        interface=s.network.interface,
        prefix=s.network.cidr.prefixlen,
        gateway=s.gateway,
        dns=s.dns_servers,
        domain=s.network.domain,
    )


def check_stats_password(password: str) -> None:
    """Refuse a stats password HAProxy cannot take as one word, without ever showing it.

    A second layer: a password set in config is checked at preview (`settings.check_secrets`); this one also sees
    generated passwords and any caller that renders without the program.
    """
    problem = stats_password_problem(password)
    if problem:
        raise ValueError(f"ha-lb:statsPassword: {problem}")


def render_haproxy_cfg(s: Settings, stats_password: str) -> str:
    """haproxy.cfg: frontends and the stats page bound to the VIP, backends with health checks."""
    check_stats_password(stats_password)
    h = s.haproxy
    return _env.get_template("haproxy.cfg.j2").render(
        cluster_name=s.cluster.name,
        vip=s.vip.address,
        maxconn=h.maxconn,
        timeouts=h.timeouts,
        frontends=h.frontends,
        backends=h.backends,
        stats=h.stats,
        stats_password=stats_password,
        resolvers=any(_is_fqdn(srv.address.rpartition(":")[0]) for b in h.backends for srv in b.servers),
    )


def _is_fqdn(host: str) -> bool:
    """A name with a domain: looked up again while HAProxy runs (a short name is resolved once, by libc)."""
    return "." in host and re.fullmatch(r"[0-9.]+", host) is None
