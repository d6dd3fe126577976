"""An SSH host key per node, made before its VM boots: cloud-init installs it, and every remote step's connection
accepts that key only, so the secrets the steps carry (hacluster and stats passwords) go to that node and no other
machine that happens to answer at its address."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_tls as tls


@dataclass(frozen=True)
class HostKey:
    """A node's ED25519 host key as cloud-init's `ssh_keys` takes it."""

    private_openssh: str
    public_openssh: str


class NodeHostKeys(pulumi.ComponentResource):
    """One generated ED25519 host key per node (pulumi-tls), kept in state as a secret."""

    private_keys: dict[str, pulumi.Output[str]]
    """OpenSSH private key by node name (secret): lands in that node's user-data only."""
    public_keys: dict[str, pulumi.Output[str]]
    """`ssh-ed25519 AAAA...` by node name: the connection's `host_key`."""

    def __init__(self, name: str, nodes: Sequence[str], opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("ha-lb:secrets:NodeHostKeys", name, None, opts)
        self.private_keys, self.public_keys = {}, {}
        for node in nodes:
            key = tls.PrivateKey(f"{name}-{node}", algorithm="ED25519", opts=pulumi.ResourceOptions(parent=self))
            self.private_keys[node] = pulumi.Output.secret(key.private_key_openssh)
            self.public_keys[node] = key.public_key_openssh.apply(str.strip)
        self.register_outputs({"publicKeys": self.public_keys})
