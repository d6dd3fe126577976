"""The floating IP: an `ocf:heartbeat:IPaddr2` primitive, created by a remote pcs step."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import pulumi
from pulumi_command import remote

from .plan import Step
from .remote_step import SshTarget, StepOptions, declare_step


@dataclass
class FloatingIpArgs:
    step: Step
    """The plan's `vip` step (create/update/delete of the IPaddr2 primitive)."""
    target: SshTarget
    """The node the one-time cluster steps run on."""
    address: str
    prefix: int
    depends_on: Sequence[pulumi.Resource]
    """Steps that must be done first (cluster started, properties set)."""
    deleted_with: Optional[pulumi.Resource] = None


class FloatingIp(pulumi.ComponentResource):
    """The VIP clients use; Pacemaker moves it to a healthy node."""

    address: pulumi.Output[str]
    """The VIP address."""
    cidr: pulumi.Output[str]
    """address/prefix."""
    resource_id: pulumi.Output[str]
    """The Pacemaker resource id."""
    command: remote.Command

    def __init__(self, name: str, args: FloatingIpArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("ha-lb:cluster:FloatingIp", name, None, opts)
        self.command = declare_step(
            name,
            args.step,
            args.target,
            StepOptions(parent=self, depends_on=args.depends_on, deleted_with=args.deleted_with),
        )
        self.address = pulumi.Output.from_input(args.address)
        self.cidr = pulumi.Output.from_input(f"{args.address}/{args.prefix}")
        self.resource_id = pulumi.Output.from_input("vip")
        self.register_outputs({"address": self.address, "cidr": self.cidr, "resourceId": self.resource_id})
