"""What the nodes share on each hypervisor: a libvirt provider, the base image volume, and optionally a network."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_libvirt as libvirt

from .plan import fingerprint
from .settings import Settings


@dataclass
class HypervisorsArgs:
    settings: Settings
    """Validated stack settings."""


class Hypervisors(pulumi.ComponentResource):
    """One provider per distinct libvirt URI, the base image once per pool and host, the NAT network if asked."""

    network_name: Optional[pulumi.Output[str]]
    """Name of the libvirt network node NICs attach to (None when they attach to a bridge)."""

    def __init__(self, name: str, args: HypervisorsArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("ha-lb:libvirt:Hypervisors", name, None, opts)
        s = args.settings
        lib = s.libvirt
        self.providers: dict[str, libvirt.Provider] = {}
        self.base_volumes: dict[str, libvirt.Volume] = {}
        for uri in sorted({n.host_uri for n in s.vms}):
            suffix = fingerprint(uri)[:8]  # stable whichever other hosts come and go
            provider = libvirt.Provider(f"{name}-{suffix}", uri=uri, opts=pulumi.ResourceOptions(parent=self))
            self.providers[uri] = provider
            self.base_volumes[uri] = libvirt.Volume(
                f"{name}-{suffix}-base",
                # Named for its image: a new image is a new volume beside the old one (Pulumi creates the new, then
                # deletes the old), so each node's disk is replaced in its own turn, one node at a time, instead of
                # every disk at once before a same-named volume can be deleted and created again.
                name=f"{s.cluster.name}-base-{fingerprint(lib.base_image)[:8]}.qcow2",
                pool=lib.pool,
                source=lib.base_image,
                format="qcow2",
                opts=pulumi.ResourceOptions(parent=self, provider=provider),
            )
        self.network_name = None
        if lib.network.create:
            (uri,) = self.providers  # validated: a created network serves one hypervisor
            network = libvirt.Network(
                f"{name}-network",
                name=f"{s.cluster.name}-net",
                mode="nat",
                addresses=[str(s.network.cidr)],
                dhcp=libvirt.NetworkDhcpArgs(enabled=False),  # addresses are static, from cloud-init
                autostart=True,
                opts=pulumi.ResourceOptions(parent=self, provider=self.providers[uri]),
            )
            self.network_name = network.name
        elif lib.network.bridge is None:
            self.network_name = pulumi.Output.from_input(lib.network.name or "default")
        self.register_outputs({"networkName": self.network_name, "hosts": sorted(self.providers)})
