"""Stack settings: one validated model of everything a stack can set.

Pure: no Pulumi import. `load_settings` takes the raw config values of the project's namespace and returns
`Settings`, or raises `SettingsError` listing every problem at once, each naming its config key and the fix.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

PROJECT = "ha-lb"

# Config keys of the project's namespace (`ha-lb:<key>` in a stack file) that hold settings.
SETTINGS_KEYS = ("libvirt", "nodes", "network", "vip", "cluster", "ssh", "haproxy", "cloudInit")
# Secret keys: set with `pulumi config set --secret`; generated when absent.
SECRET_KEYS = ("haclusterPassword", "statsPassword", "sshPrivateKey")

_HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_MAC = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
_SSH_PUBLIC_KEY = re.compile(r"^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp\d+|sk-[a-z0-9@.-]+) [A-Za-z0-9+/=]+( .*)?$")
_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")  # Pacemaker ids and HAProxy proxy names

# Pacemaker durations: a number with an optional unit (ms, s, m/min, h).
Duration = Annotated[str, Field(pattern=r"^[0-9]+(ms|s|m|min|h)?$")]
Port = Annotated[int, Field(ge=1, le=65535)]
Name = Annotated[str, Field(pattern=_HOSTNAME.pattern)]
Ident = Annotated[str, Field(pattern=_ID.pattern)]


class Model(BaseModel):
    """Base of every settings model: camelCase keys in config, unknown keys refused, immutable."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


class LibvirtNetwork(Model):
    """Where node NICs attach: an existing libvirt network, a host bridge, or a NAT network the stack creates.

    One of the three; with none set, the existing network `default`.
    """

    name: str | None = "default"
    """An existing libvirt network."""
    bridge: str | None = None
    """A host bridge (for nodes spread over several hypervisors)."""
    create: bool = False
    """Create a NAT network with `network.cidr` (one hypervisor only)."""


class LibvirtSettings(Model):
    uri: str = "qemu:///system"
    """Default libvirt connection URI; a node may name its own (`hostUri`)."""
    pool: str = "default"
    """Storage pool for the base image, node disks and cloud-init ISOs."""
    base_image: str = "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2"
    """Debian 12 qcow2 image: a path on the hypervisor or a URL."""
    network: LibvirtNetwork = LibvirtNetwork()


class NodeSpec(Model):
    """One node of an explicit node list."""

    name: Name
    address: ipaddress.IPv4Address
    mac: str | None = None
    vcpu: int | None = Field(default=None, ge=1)
    memory_mib: int | None = Field(default=None, ge=512)
    disk_gib: int | None = Field(default=None, ge=4)
    host_uri: str | None = None


class NodesSettings(Model):
    count: int = 2
    """Node count when no explicit list is given: names `<namePrefix>1..N`, consecutive addresses."""
    name_prefix: Name = "lb"
    vcpu: int = Field(default=2, ge=1)
    memory_mib: int = Field(default=1024, ge=512)
    disk_gib: int = Field(default=10, ge=4)
    list_: list[NodeSpec] | None = Field(default=None, alias="list")
    """Explicit nodes; overrides count and namePrefix."""


class NetworkSettings(Model):
    cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("192.168.122.0/24")
    gateway: ipaddress.IPv4Address | None = None
    """Default: the first address of the CIDR."""
    dns: list[ipaddress.IPv4Address] | None = None
    """Default: the gateway."""
    first_address: ipaddress.IPv4Address | None = None
    """First node address when nodes are counted. Default: the CIDR's 11th address."""
    interface: str = "eth0"
    """Name cloud-init gives the node's NIC (matched by MAC)."""
    domain: str = "lb.internal"
    """DNS domain of node FQDNs."""


class VipSettings(Model):
    address: ipaddress.IPv4Address
    netmask: int | None = Field(default=None, ge=1, le=32)
    """Prefix length. Default: the network's."""
    nic: str | None = None
    """Interface IPaddr2 brings the VIP up on. Default: `network.interface`."""


class MonitorSettings(Model):
    interval: Duration
    timeout: Duration


class FenceDevice(Model):
    """A fencing device for one node (e.g. fence_xvm with the node's libvirt domain as `plug`)."""

    name: Ident
    agent: str = Field(pattern=r"^fence_[a-z0-9_]+$")
    node: Name
    """The node this device fences; the device avoids running on it."""
    params: dict[str, str] = {}


class ClusterSettings(Model):
    name: str = Field(default="ha-lb", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    profile: Literal["default", "fast"] = "default"
    """Failover profile: defaults for tokenMs and placement (README, "Failover profiles")."""
    token_ms: int | None = Field(default=None, ge=200, le=60000)
    """Corosync totem token: a silent node is declared dead after token + consensus (1.2 x token). Default: the
    profile's."""
    stickiness: int = Field(default=100, ge=0)
    """resource-stickiness: resources stay where they run when a failed node returns."""
    migration_threshold: int = Field(default=3, ge=1)
    """Failures on a node before a resource moves away from it."""
    dc_deadtime: Duration = "5s"
    """How long a starting node waits for a DC before holding an election (Pacemaker's default, 20s, is most of a
    fresh cluster's start-up; nodes started together by `pcs cluster start --all` need far less)."""
    failure_timeout: Duration = "10min"
    """When a node's fail count expires, so it may host the resource again."""
    vip_monitor: MonitorSettings = MonitorSettings(interval="10s", timeout="20s")
    haproxy_monitor: MonitorSettings = MonitorSettings(interval="5s", timeout="20s")
    no_quorum_policy: Literal["stop", "freeze", "ignore", "demote"] = "stop"
    """`stop` is right for 2 nodes too: corosync's two_node keeps quorum on the survivor."""
    stonith: bool | None = None
    """Fencing on or off. Default: on exactly when fencing devices are listed."""
    fencing: list[FenceDevice] = []
    placement: Literal["with-vip", "everywhere"] | None = None
    """`with-vip`: HAProxy runs only where the VIP is. `everywhere`: a clone on every node; only the VIP moves.
    Default: the profile's."""


class SshSettings(Model):
    user: Name = "debian"
    """Admin user cloud-init creates (passwordless sudo); Pulumi connects as this user."""
    port: Port = 22
    authorized_keys: list[str] = []
    """Extra public keys allowed to log in as the admin user."""
    public_key: str | None = None
    """Public half of `sshPrivateKey` when that is set by hand."""
    ca_public_key: str | None = None
    """SSH CA public key sshd trusts for user certificates (TrustedUserCAKeys)."""


class Server(Model):
    name: Ident
    address: str
    """host:port"""
    check: bool = True
    options: str = Field(default="inter 2s fall 3 rise 2", pattern=r"^[A-Za-z0-9 ._:-]*$")


class Backend(Model):
    name: Ident
    mode: Literal["tcp", "http"] = "tcp"
    balance: Literal["roundrobin", "static-rr", "leastconn", "first", "source"] = "roundrobin"
    check_path: str | None = Field(default=None, pattern=r"^/[A-Za-z0-9/._~%-]*$")
    """HTTP health-check path (http mode); tcp backends get `option tcp-check`."""
    servers: list[Server]


class Frontend(Model):
    name: Ident
    port: Port
    mode: Literal["tcp", "http"] = "tcp"
    backend: Ident


class StatsSettings(Model):
    port: Port = 32700
    user: str = Field(default="admin", pattern=r"^[A-Za-z0-9_.-]+$")
    uri: str = Field(default="/", pattern=r"^/[A-Za-z0-9/._~-]*$")
    refresh: Duration = "10s"


class TimeoutSettings(Model):
    connect: Duration = "5s"
    client: Duration = "50s"
    server: Duration = "50s"
    check: Duration = "5s"


def _kube_apiserver_backend() -> list[Backend]:
    servers = [Server(name=f"kube-mast0{i}", address=f"kube-mast0{i}:6443") for i in (1, 2, 3)]
    return [Backend(name="kubernetes-master-nodes", servers=servers)]


class HaproxySettings(Model):
    maxconn: int = Field(default=4096, ge=1)
    frontends: list[Frontend] = [Frontend(name="kubernetes-apiserver", port=6443, backend="kubernetes-master-nodes")]
    backends: list[Backend] = Field(default_factory=_kube_apiserver_backend)
    timeouts: TimeoutSettings = TimeoutSettings()
    stats: StatsSettings = StatsSettings()


class CloudInitSettings(Model):
    timezone: str = Field(default="UTC", pattern=r"^[A-Za-z0-9_+/-]+$")
    locale: str = Field(default="C.UTF-8", pattern=r"^[A-Za-z0-9_.@-]+$")
    package_update: bool = True
    """Run `apt-get update` before installing packages."""
    package_upgrade: bool = False
    """Upgrade every package at first boot."""
    extra_packages: list[str] = []


@dataclass(frozen=True)
class FailoverProfile:
    token_ms: int
    placement: Literal["with-vip", "everywhere"]


# Chosen from the lab's measurements (README, "Benchmarks"): see bench/failover.py.
FAILOVER_PROFILES = {
    "default": FailoverProfile(token_ms=1000, placement="everywhere"),
    "fast": FailoverProfile(token_ms=400, placement="everywhere"),
}


@dataclass(frozen=True)
class Node:
    """A node with every default resolved."""

    name: str
    address: ipaddress.IPv4Address
    mac: str
    vcpu: int
    memory_mib: int
    disk_gib: int
    host_uri: str
    fqdn: str


class Settings(Model):
    libvirt: LibvirtSettings = LibvirtSettings()
    nodes: NodesSettings = NodesSettings()
    network: NetworkSettings = NetworkSettings()
    vip: VipSettings
    cluster: ClusterSettings = ClusterSettings()
    ssh: SshSettings = SshSettings()
    haproxy: HaproxySettings = HaproxySettings()
    cloud_init: CloudInitSettings = CloudInitSettings()

    model_config = ConfigDict(ignored_types=(cached_property,))

    @cached_property
    def node_list(self) -> list[Node]:
        """Every node, in order, defaults resolved (addresses, deterministic MACs, resources, host URI)."""
        n, specs = self.nodes, self.nodes.list_
        if specs is None:
            start = self.network.first_address or self.network.cidr.network_address + 11
            specs = [NodeSpec(name=f"{n.name_prefix}{i + 1}", address=start + i) for i in range(n.count)]
        return [
            Node(
                name=s.name,
                address=s.address,
                mac=s.mac.lower() if s.mac else derive_mac(self.cluster.name, s.name),
                vcpu=s.vcpu or n.vcpu,
                memory_mib=s.memory_mib or n.memory_mib,
                disk_gib=s.disk_gib or n.disk_gib,
                host_uri=s.host_uri or self.libvirt.uri,
                fqdn=f"{s.name}.{self.network.domain}",
            )
            for s in specs
        ]

    @property
    def token_ms(self) -> int:
        return self.cluster.token_ms or FAILOVER_PROFILES[self.cluster.profile].token_ms

    @property
    def placement(self) -> Literal["with-vip", "everywhere"]:
        return self.cluster.placement or FAILOVER_PROFILES[self.cluster.profile].placement

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return self.network.gateway or self.network.cidr.network_address + 1

    @property
    def dns_servers(self) -> list[ipaddress.IPv4Address]:
        return self.network.dns if self.network.dns is not None else [self.gateway]

    @property
    def vip_prefix(self) -> int:
        return self.vip.netmask or self.network.cidr.prefixlen

    @property
    def vip_nic(self) -> str:
        return self.vip.nic or self.network.interface

    @property
    def stonith_enabled(self) -> bool:
        return bool(self.cluster.fencing) if self.cluster.stonith is None else self.cluster.stonith

    @property
    def first_node(self) -> Node:
        """The node one-time cluster steps run on."""
        return self.node_list[0]


def derive_mac(cluster: str, node: str) -> str:
    """A stable locally administered MAC in QEMU's 52:54:00 range, from the cluster and node names."""
    digest = hashlib.sha256(f"{cluster}/{node}".encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


class SettingsError(ValueError):
    """Every problem found in a stack's settings, each naming its config key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid stack configuration:\n" + "\n".join(f"  - {p}" for p in problems))


def _key(loc: Iterable[Any]) -> str:
    key = f"{PROJECT}:"
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if not key.endswith(":") else str(part))
    return key


def load_settings(raw: Mapping[str, Any]) -> Settings:
    """Validate raw config values (`{"nodes": {...}, ...}`, camelCase keys) into `Settings`, or raise SettingsError."""
    try:
        settings = Settings.model_validate(dict(raw))
    except ValidationError as err:
        problems = []
        for e in err.errors():
            msg = e["msg"]
            if e["type"] == "extra_forbidden":
                msg = "unknown key: remove it or check its spelling against the README's config reference"
            elif e["type"] == "missing":
                msg = "required: set it in the stack file"
            elif e["type"] == "ip_v4_network":
                msg = "not an IPv4 network: write the network address with its prefix, like 192.168.122.0/24"
            elif e["type"] == "ip_v4_address":
                msg = "not an IPv4 address: write four numbers 0-255, like 192.168.122.100"
            problems.append(f"{_key(e['loc'])}: {msg}")
        raise SettingsError(problems) from None
    problems = check_settings(settings)
    if problems:
        raise SettingsError(problems)
    return settings


def check_unknown_keys(keys: Iterable[str]) -> list[str]:
    """Problems for config keys of the project namespace that this program does not read."""
    known = set(SETTINGS_KEYS) | set(SECRET_KEYS)
    return [f"{PROJECT}:{k}: unknown key: the program reads {', '.join(sorted(known))}" for k in keys if k not in known]


def _check_address(key: str, addr: ipaddress.IPv4Address, s: Settings) -> list[str]:
    net = s.network.cidr
    if addr not in net:
        return [f"{key}: {addr} is outside network.cidr {net}: pick an address inside it"]
    if addr in (net.network_address, net.broadcast_address):
        return [f"{key}: {addr} is the network or broadcast address of {net}: pick a host address"]
    if addr == s.gateway:
        return [f"{key}: {addr} is the gateway: pick another address"]
    return []


def check_settings(s: Settings) -> list[str]:
    """Every cross-field problem of valid-typed settings; empty when the stack can be built."""
    p: list[str] = []
    k = f"{PROJECT}:"
    net = s.network.cidr

    # Network.
    if s.network.gateway is not None and s.network.gateway not in net:
        p.append(f"{k}network.gateway: {s.network.gateway} is outside network.cidr {net}")
    if not _IFNAME.match(s.network.interface):
        p.append(f"{k}network.interface: {s.network.interface!r} is not an interface name (1-15 of A-Za-z0-9_.-)")
    if s.vip.nic is not None and not _IFNAME.match(s.vip.nic):
        p.append(f"{k}vip.nic: {s.vip.nic!r} is not an interface name (1-15 of A-Za-z0-9_.-)")
    if not _DOMAIN.match(s.network.domain):
        p.append(f"{k}network.domain: {s.network.domain!r} is not a DNS domain (lower-case labels joined by dots)")

    # Nodes.
    n = s.nodes
    nodes_ok = True
    if n.list_ is None:
        if n.count < 2:
            p.append(f"{k}nodes.count: {n.count} nodes cannot fail over: set 2 or more")
            nodes_ok = False
        else:
            first = s.network.first_address or net.network_address + 11
            last = first + (n.count - 1) if int(first) + n.count - 1 <= 0xFFFFFFFF else None
            if last is None or last not in net or last == net.broadcast_address:
                p.append(
                    f"{k}nodes.count: {n.count} consecutive addresses from {first} do not fit in {net}: "
                    "lower the count, move network.firstAddress, or widen network.cidr"
                )
                nodes_ok = False
    elif len(n.list_) < 2:
        p.append(f"{k}nodes.list: {len(n.list_)} node(s) cannot fail over: list 2 or more")
    if nodes_ok:
        nodes = s.node_list
        for what, values in (
            ("name", [x.name for x in nodes]),
            ("address", [str(x.address) for x in nodes]),
            ("mac", [x.mac for x in nodes]),
        ):
            for value, times in Counter(values).items():
                if times > 1:
                    p.append(f"{k}nodes: {times} nodes share the {what} {value}: each node needs its own")
        for i, node in enumerate(nodes):
            key = f"{k}nodes.list[{i}]" if n.list_ is not None else f"{k}nodes (node {node.name})"
            p.extend(_check_address(f"{key}.address" if n.list_ is not None else key, node.address, s))
            if not _MAC.match(node.mac):
                p.append(f"{key}.mac: {node.mac!r} is not a MAC address like 52:54:00:12:34:56")
            elif int(node.mac[:2], 16) & 1:
                p.append(f"{key}.mac: {node.mac} is a multicast MAC: the first octet must be even")
        if s.libvirt.network.create and len({x.host_uri for x in nodes}) > 1:
            p.append(
                f"{k}libvirt.network.create: a NAT network lives on one hypervisor, but nodes use "
                f"{len({x.host_uri for x in nodes})} host URIs: attach them to a shared bridge (libvirt.network.bridge)"
            )
        # VIP.
        p.extend(_check_address(f"{k}vip.address", s.vip.address, s))
        if s.vip.address in [x.address for x in nodes]:
            p.append(f"{k}vip.address: {s.vip.address} is also a node address: the VIP needs an address of its own")

        # Fencing.
        names = {x.name for x in nodes}
        for i, dev in enumerate(s.cluster.fencing):
            if dev.node not in names:
                p.append(
                    f"{k}cluster.fencing[{i}].node: {dev.node!r} is not a node of this stack "
                    f"({', '.join(sorted(names))})"
                )
            for param in dev.params:
                if not re.match(r"^[a-z][a-z0-9_-]*$", param):
                    p.append(f"{k}cluster.fencing[{i}].params: {param!r} is not an agent parameter name")
    lib = s.libvirt.network
    chosen = ["name" in lib.model_fields_set and lib.name is not None, lib.bridge is not None, lib.create]
    if sum(chosen) > 1:
        p.append(f"{k}libvirt.network: set one of name (an existing network), bridge, or create: true, not several")
    if s.cluster.stonith is True and not s.cluster.fencing:
        p.append(
            f"{k}cluster.stonith: true with no cluster.fencing devices: Pacemaker would start no resource; "
            "list the devices or set stonith: false"
        )
    for dup, times in Counter(d.name for d in s.cluster.fencing).items():
        if times > 1:
            p.append(f"{k}cluster.fencing: {times} devices are named {dup}: names must be unique")

    # SSH.
    for i, pubkey in enumerate(s.ssh.authorized_keys):
        if not _SSH_PUBLIC_KEY.match(pubkey.strip()):
            p.append(f'{k}ssh.authorizedKeys[{i}]: not an OpenSSH public key ("ssh-ed25519 AAAA... comment")')
    for name, given in (("publicKey", s.ssh.public_key), ("caPublicKey", s.ssh.ca_public_key)):
        if given is not None and not _SSH_PUBLIC_KEY.match(given.strip()):
            p.append(f'{k}ssh.{name}: not an OpenSSH public key ("ssh-ed25519 AAAA... comment")')

    p.extend(_check_haproxy(s))
    return p


def _check_haproxy(s: Settings) -> list[str]:
    p: list[str] = []
    k = f"{PROJECT}:haproxy."
    h = s.haproxy
    backends = {b.name: b for b in h.backends}
    # A frontend and a backend may share a name; two of a kind may not, nor anything named like the stats section.
    for kind, names in (("frontends", [f.name for f in h.frontends]), ("backends", [b.name for b in h.backends])):
        for name, times in Counter([*names, "stats"]).items():
            if times > 1:
                what = "the stats page's section" if name == "stats" else f"{times} {kind}"
                p.append(f"{k}{kind}: the name {name!r} is taken by {what}: rename")
    ports: dict[int, str] = {h.stats.port: "haproxy.stats.port"}
    for i, f in enumerate(h.frontends):
        if f.port in ports:
            p.append(f"{k}frontends[{i}].port: {f.port} is already taken by {ports[f.port]}: use another port")
        else:
            ports[f.port] = f"haproxy.frontends[{i}] ({f.name})"
        b = backends.get(f.backend)
        if b is None:
            p.append(f"{k}frontends[{i}].backend: no backend named {f.backend!r}: add it to haproxy.backends")
        elif b.mode != f.mode:
            p.append(
                f"{k}frontends[{i}].mode: {f.mode} frontend {f.name} uses {b.mode} backend {b.name}: make them match"
            )
    for i, b in enumerate(h.backends):
        if not b.servers:
            p.append(f"{k}backends[{i}].servers: backend {b.name} has no servers: list at least one host:port")
        if b.check_path is not None and b.mode != "http":
            p.append(f"{k}backends[{i}].checkPath: only http backends take an HTTP health check")
        for dup, times in Counter(x.name for x in b.servers).items():
            if times > 1:
                p.append(f"{k}backends[{i}].servers: {times} servers are named {dup}: names must be unique")
        for j, srv in enumerate(b.servers):
            host, sep, port = srv.address.rpartition(":")
            if not sep or not host:
                p.append(f"{k}backends[{i}].servers[{j}].address: {srv.address!r} has no port: write host:port")
            elif not port.isdigit() or not 1 <= int(port) <= 65535:
                p.append(f"{k}backends[{i}].servers[{j}].address: port {port!r} is not 1-65535")
            elif not (_is_ipv4(host) or _DOMAIN.match(host)):
                p.append(f"{k}backends[{i}].servers[{j}].address: {host!r} is neither an IPv4 address nor a host name")
    return p


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def warnings_for(s: Settings) -> list[str]:
    """Choices that are valid but worth telling the user about at preview."""
    w = []
    if not s.stonith_enabled:
        w.append(
            "fencing is off (cluster.stonith): a node that hangs rather than dies can keep the VIP while another "
            "node takes it; add cluster.fencing devices for production"
        )
    if s.cluster.no_quorum_policy == "ignore" and len(s.node_list) >= 3:
        w.append("cluster.noQuorumPolicy: ignore lets a minority partition keep running resources: use stop")
    return w
