"""The HA stack on the nodes: every step of the plan as a remote command, in dependency order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_random as random
from pulumi_command import remote

from .floating_ip import FloatingIp, FloatingIpArgs
from .plan import GOES_WITH_ITS_OWNER, Plan, Stdin, Step, StepKind
from .remote_step import SshTarget, StepOptions, declare_step
from .settings import Settings
from .vm import ClusterNode


@dataclass
class HaClusterArgs:
    settings: Settings
    plan: Plan
    """The steps to declare (`build_plan(settings)`)."""
    nodes: dict[str, ClusterNode]
    """The VMs by node name."""
    ssh_private_key: pulumi.Output[str]
    host_keys: dict[str, pulumi.Output[str]]
    """Each node's SSH host public key: the only key its connection accepts."""
    hacluster_password: pulumi.Output[str]
    haproxy_cfg: pulumi.Output[str]
    """Rendered haproxy.cfg (secret: it holds the stats password)."""
    fence_secret: Optional[pulumi.Output[str]] = None
    """What the fence devices use (SSH key, BMC password or fence_xvm key); None with fencing off."""


class HaCluster(pulumi.ComponentResource):
    """Corosync/Pacemaker cluster formed with pcs, the floating IP, and HAProxy as a cluster resource."""

    cluster_name: pulumi.Output[str]
    vip: pulumi.Output[str]
    stats_url: pulumi.Output[str]
    node_names: pulumi.Output[list[str]]
    node_addresses: pulumi.Output[dict[str, str]]
    floating_ip: FloatingIp
    steps: dict[str, remote.Command]
    """Every declared step by plan id."""

    def __init__(self, name: str, args: HaClusterArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("ha-lb:cluster:HaCluster", name, None, opts)
        s = args.settings
        targets = {
            n.name: SshTarget(str(n.address), s.ssh.user, s.ssh.port, args.ssh_private_key, args.host_keys[n.name])
            for n in s.vms
        }
        stdin = {Stdin.HACLUSTER_PASSWORD: args.hacluster_password, Stdin.HAPROXY_CFG: args.haproxy_cfg}
        if args.fence_secret is not None:
            stdin[Stdin.FENCE_SECRET] = args.fence_secret
        # The cluster's lifetime: created once, never replaced, deleted by `pulumi destroy` only. Cluster-wide steps
        # go with it (`deleted_with`), so a destroy skips their deletes, the VMs going anyway.
        self.lifetime = random.RandomId(f"{name}-lifetime", byte_length=4, opts=pulumi.ResourceOptions(parent=self))
        self.steps = {}
        for step in args.plan.steps:
            vm = args.nodes[step.node]
            deps: list[pulumi.Resource] = [self.steps[d] for d in step.depends_on]
            if step.kind is StepKind.WAIT:
                deps.append(vm.domain)
            if step.owner == "vip":
                self.floating_ip = FloatingIp(
                    f"{name}-floating-ip",
                    FloatingIpArgs(
                        step=step,
                        target=targets[step.node],
                        address=str(s.vip.address),
                        prefix=s.vip_prefix,
                        depends_on=deps,
                        deleted_with=self._goes_with(step, vm),
                    ),
                    opts=pulumi.ResourceOptions(parent=self),
                )
                self.steps[step.id] = self.floating_ip.command
                continue
            self.steps[step.id] = declare_step(
                name,
                step,
                targets[step.node],
                StepOptions(
                    parent=self,
                    depends_on=deps,
                    stdin=stdin[step.stdin] if step.stdin else None,
                    deleted_with=self._goes_with(step, vm),
                    extra_triggers=_node_triggers(step, vm, args.nodes),
                ),
            )
        stats = s.haproxy.stats
        self.cluster_name = pulumi.Output.from_input(s.cluster.name)
        self.vip = self.floating_ip.address
        self.stats_url = pulumi.Output.from_input(f"http://{s.vip.address}:{stats.port}{stats.uri}")
        self.node_names = pulumi.Output.from_input([n.name for n in s.node_list])
        self.node_addresses = pulumi.Output.from_input({n.name: str(n.address) for n in s.node_list})
        self.register_outputs(
            {
                "clusterName": self.cluster_name,
                "vip": self.vip,
                "statsUrl": self.stats_url,
                "nodeNames": self.node_names,
                "nodeAddresses": self.node_addresses,
            }
        )

    def _goes_with(self, step: Step, vm: ClusterNode) -> Optional[pulumi.Resource]:
        if step.goes_with == GOES_WITH_ITS_OWNER:
            return vm.domain if step.owner == "node" else self.lifetime
        return self.steps[step.goes_with] if step.goes_with else None


def _node_triggers(step: Step, vm: ClusterNode, nodes: dict[str, ClusterNode]) -> list[pulumi.Input[str]]:
    """A step on one node runs afresh on a new VM of that node, and so does a step about a node (`Step.about`)."""
    own = [vm.domain.id] if step.kind in (StepKind.WAIT, StepKind.NODE) else []
    return [*own, *(nodes[n].domain.id for n in step.about)]
