"""The stack's secrets: taken from config when set there, generated (pulumi-random, pulumi-tls) when not."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_random as random
import pulumi_tls as tls


@dataclass
class ClusterSecretsArgs:
    hacluster_password: Optional[pulumi.Output[str]] = None
    """Password of the `hacluster` user pcsd authenticates; generated when None."""
    stats_password: Optional[pulumi.Output[str]] = None
    """Password of HAProxy's stats page; generated when None."""
    ssh_private_key: Optional[pulumi.Output[str]] = None
    """OpenSSH private key Pulumi connects with; an ED25519 key is generated when None."""
    fence_secret: dict[str, Optional[pulumi.Output[str]]] = field(default_factory=dict)
    """The fencing secret set in config, by the agent it is for (fenceSshKey, fencePassword, fenceXvmKey)."""


def _password(name: str, given: Optional[pulumi.Output[str]], parent: pulumi.Resource) -> pulumi.Output[str]:
    if given is not None:
        return pulumi.Output.secret(given)
    # Letters and digits only: the value lands in chpasswd input and HAProxy's `stats auth user:password`.
    generated = random.RandomPassword(name, length=32, special=False, opts=pulumi.ResourceOptions(parent=parent))
    # The provider marks `result` secret; saying so here keeps it secret whatever the provider does.
    return pulumi.Output.secret(generated.result)


class ClusterSecrets(pulumi.ComponentResource):
    """Every secret the cluster needs, each a Pulumi secret."""

    hacluster_password: pulumi.Output[str]
    """Password of the `hacluster` user (secret)."""
    stats_password: pulumi.Output[str]
    """Password of HAProxy's stats page (secret)."""
    ssh_private_key: pulumi.Output[str]
    """OpenSSH private key for the admin user (secret)."""
    ssh_public_key: pulumi.Output[str]
    """Its public half, installed on every node by cloud-init."""

    def __init__(self, name: str, args: ClusterSecretsArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("ha-lb:secrets:ClusterSecrets", name, None, opts)
        self.hacluster_password = _password(f"{name}-hacluster-password", args.hacluster_password, self)
        self.stats_password = _password(f"{name}-stats-password", args.stats_password, self)
        if args.ssh_private_key is not None:
            self.ssh_private_key = pulumi.Output.secret(args.ssh_private_key)
            self.ssh_public_key = tls.get_public_key_output(
                private_key_openssh=self.ssh_private_key, opts=pulumi.InvokeOutputOptions(parent=self)
            ).public_key_openssh
        else:
            key = tls.PrivateKey(f"{name}-ssh-key", algorithm="ED25519", opts=pulumi.ResourceOptions(parent=self))
            self.ssh_private_key = pulumi.Output.secret(key.private_key_openssh)
            self.ssh_public_key = key.public_key_openssh
        self.register_outputs(
            {
                "haclusterPassword": self.hacluster_password,
                "statsPassword": self.stats_password,
                "sshPrivateKey": self.ssh_private_key,
                "sshPublicKey": self.ssh_public_key,
            }
        )


class FencingSecret(pulumi.ComponentResource):
    """What the nodes fence with: the SSH key for fence_virsh (generated when not set; its public half must be
    authorized on the hypervisors), the fence_xvm key (generated when not set; the hypervisors' fence_virtd needs it
    too), or the BMC password for fence_ipmilan (set in config: a BMC's password cannot be generated here)."""

    value: pulumi.Output[str]
    """The secret the `fence-secret-<node>` steps write on every node (secret)."""
    public_key: Optional[pulumi.Output[str]]
    """fence_virsh: the public half, to authorize on the hypervisors (None for other agents)."""

    def __init__(
        self,
        name: str,
        agent: str,
        given: Optional[pulumi.Output[str]],
        opts: Optional[pulumi.ResourceOptions] = None,
    ) -> None:
        super().__init__("ha-lb:secrets:FencingSecret", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.public_key = None
        if agent == "fence_virsh":
            if given is not None:
                self.value = pulumi.Output.secret(given)
                self.public_key = tls.get_public_key_output(
                    private_key_openssh=self.value, opts=pulumi.InvokeOutputOptions(parent=self)
                ).public_key_openssh
            else:
                key = tls.PrivateKey(f"{name}-ssh-key", algorithm="ED25519", opts=child)
                self.value = pulumi.Output.secret(key.private_key_openssh)
                self.public_key = key.public_key_openssh
        elif given is not None:
            self.value = pulumi.Output.secret(given)
        elif agent == "fence_xvm":
            # fence_xvm reads the key file as bytes: 512 base64 characters are 3072 random bits.
            xvm = random.RandomPassword(f"{name}-xvm-key", length=512, special=False, opts=child)
            self.value = pulumi.Output.secret(xvm.result)
        else:
            raise ValueError(f"{agent}: its secret must be set in config")  # refused at preview before this
        self.register_outputs({"value": self.value, "publicKey": self.public_key})
