"""The whole stack from validated settings: secrets, hypervisor objects, node VMs, then the HA cluster."""

from __future__ import annotations

from typing import Any

import pulumi

from .ha_cluster import HaCluster, HaClusterArgs
from .host_keys import HostKey, NodeHostKeys
from .hypervisors import Hypervisors, HypervisorsArgs
from .plan import build_plan
from .render import render_haproxy_cfg, render_meta_data, render_network_config, render_user_data
from .secrets import ClusterSecrets, ClusterSecretsArgs, FencingSecret
from .settings import Node, Settings
from .vm import ClusterNode, ClusterNodeArgs


def build_stack(s: Settings, secret_args: ClusterSecretsArgs) -> dict[str, Any]:
    """Declare every resource; return the stack outputs."""
    secrets = ClusterSecrets("secrets", secret_args)
    hosts = Hypervisors("hypervisors", HypervisorsArgs(settings=s))
    host_keys = NodeHostKeys("host-keys", [n.name for n in s.vms])
    agent = s.cluster.fencing.agent
    fencing = (
        FencingSecret("fencing", agent, secret_args.fence_secret.get(agent), pulumi.ResourceOptions(parent=secrets))
        if s.stonith_enabled
        else None
    )

    def user_data(node: Node) -> pulumi.Output[str]:
        # Secret: it carries the node's host private key.
        return pulumi.Output.all(
            secrets.ssh_public_key, host_keys.private_keys[node.name], host_keys.public_keys[node.name]
        ).apply(lambda a: render_user_data(s, node, a[0], HostKey(a[1], a[2])))

    nodes = {
        n.name: ClusterNode(
            n.name,
            ClusterNodeArgs(
                node=n,
                cluster_name=s.cluster.name,
                pool=s.libvirt.pool,
                base_volume=hosts.base_volumes[n.host_uri],
                provider=hosts.providers[n.host_uri],
                network_name=hosts.network_name,
                bridge=s.libvirt.network.bridge,
                user_data=user_data(n),
                meta_data=render_meta_data(s, n),
                network_config=render_network_config(s, n),
            ),
        )
        for n in s.vms  # the nodes, and the quorum device's arbiter
    }
    cluster = HaCluster(
        "cluster",
        HaClusterArgs(
            settings=s,
            plan=build_plan(s),
            nodes=nodes,
            ssh_private_key=secrets.ssh_private_key,
            host_keys=host_keys.public_keys,
            fence_secret=fencing.value if fencing else None,
            hacluster_password=secrets.hacluster_password,
            haproxy_cfg=secrets.stats_password.apply(lambda pw: render_haproxy_cfg(s, pw)),
        ),
    )
    fencing_outputs: dict[str, Any] = {}
    if fencing is not None and fencing.public_key is not None:
        fencing_outputs["fenceSshPublicKey"] = fencing.public_key  # to authorize on the hypervisors
    if fencing is not None and agent == "fence_xvm":
        fencing_outputs["fenceXvmKey"] = fencing.value  # the hypervisors' fence_virtd needs the same key
    arbiter = {"quorumDevice": str(s.arbiter.address)} if s.arbiter else {}
    return {
        **fencing_outputs,
        **arbiter,
        "clusterName": cluster.cluster_name,
        "vip": cluster.vip,
        "statsUrl": cluster.stats_url,
        "statsUser": s.haproxy.stats.user,
        "nodes": cluster.node_addresses,
        "sshUser": s.ssh.user,
        "placement": s.placement,
        "haclusterPassword": secrets.hacluster_password,
        "statsPassword": secrets.stats_password,
        "sshPrivateKey": secrets.ssh_private_key,
    }
