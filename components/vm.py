"""A cluster node: a libvirt domain on a copy-on-write disk, prepared by cloud-init."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_libvirt as libvirt

from .settings import Node

GIB = 1024**3


@dataclass
class ClusterNodeArgs:
    node: Node
    """The node's resolved settings (name, address, MAC, size, host)."""
    cluster_name: str
    """Prefix of libvirt object names, so several clusters share a host."""
    pool: str
    """Storage pool of the disk and the cloud-init ISO."""
    base_volume: libvirt.Volume
    """The Debian base image this node's disk is a copy-on-write layer of."""
    provider: libvirt.Provider
    """The hypervisor the node runs on."""
    network_name: Optional[pulumi.Input[str]]
    """libvirt network of the NIC, or None to attach to `bridge`."""
    bridge: Optional[str]
    user_data: pulumi.Input[str]
    meta_data: str
    network_config: str


class ClusterNode(pulumi.ComponentResource):
    """Disk, cloud-init ISO and domain of one node."""

    name: pulumi.Output[str]
    """Node (host) name."""
    address: pulumi.Output[str]
    """Static IPv4 address."""
    domain: libvirt.Domain
    """The domain: steps that live on this node die with it (`deleted_with`)."""

    def __init__(self, name: str, args: ClusterNodeArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("ha-lb:libvirt:ClusterNode", name, None, opts)
        n = args.node
        # Fixed libvirt names: a replacement must delete the old object before creating the new one.
        child = pulumi.ResourceOptions(parent=self, provider=args.provider, delete_before_replace=True)
        disk = libvirt.Volume(
            f"{name}-disk",
            name=f"{args.cluster_name}-{n.name}.qcow2",
            pool=args.pool,
            base_volume_id=args.base_volume.id,
            size=n.disk_gib * GIB,
            format="qcow2",
            opts=child,
        )
        seed = libvirt.CloudInitDisk(
            f"{name}-cloudinit",
            name=f"{args.cluster_name}-{n.name}-cloudinit.iso",
            pool=args.pool,
            user_data=args.user_data,
            meta_data=args.meta_data,
            network_config=args.network_config,
            opts=child,
        )
        self.domain = libvirt.Domain(
            f"{name}-domain",
            name=f"{args.cluster_name}-{n.name}",
            vcpu=n.vcpu,
            memory=n.memory_mib,
            autostart=True,
            cloudinit=seed.id,
            cpu=libvirt.DomainCpuArgs(mode="host-passthrough"),
            disks=[libvirt.DomainDiskArgs(volume_id=disk.id)],
            network_interfaces=[
                libvirt.DomainNetworkInterfaceArgs(
                    network_name=args.network_name,
                    bridge=args.bridge,
                    mac=n.mac,
                    # terraform-provider-libvirt 0.8.1's lease wait is broken: the address is static instead.
                    wait_for_lease=False,
                )
            ],
            consoles=[libvirt.DomainConsoleArgs(type="pty", target_port="0", target_type="serial")],
            # The provider swaps a changed cloud-init ISO on the running domain, where cloud-init never reads it
            # again (same instance-id): a new address, SSH key or package list would never reach the node. A new
            # VM does, and replacements roll one node at a time (`leave-<node>`).
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(replace_on_changes=["cloudinit"])),
        )
        self.name = pulumi.Output.from_input(n.name)
        self.address = pulumi.Output.from_input(str(n.address))
        self.register_outputs({"name": self.name, "address": self.address, "domainId": self.domain.id})
