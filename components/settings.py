"""Stack settings: one validated model of everything a stack can set.

Pure: no Pulumi import. `load_settings` takes the raw config values of the project's namespace and returns
`Settings`, or raises `SettingsError` listing every problem at once, each naming its config key and the fix.
`check_secrets` does the same for the secrets set in config, never showing their values.

Every text rule is a full match (`re.fullmatch`): with `re.match` and `$`, a value with a trailing newline would
pass and land in YAML, haproxy.cfg or a resource parameter. A refusal says in words what the key takes, never the
regular expression.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    Strict,
    ValidationError,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import ErrorDetails, PydanticCustomError, core_schema

PROJECT = "ha-lb"
# Corosync and Pacemaker clusters are supported up to 32 nodes; a bound also keeps a typo from listing millions.
MAX_NODES = 32

# Config keys of the project's namespace (`ha-lb:<key>` in a stack file) that hold settings.
SETTINGS_KEYS = ("libvirt", "nodes", "network", "vip", "cluster", "ssh", "haproxy", "cloudInit")
# Secret keys: set with `pulumi config set --secret`; generated when absent.
SECRET_KEYS = ("haclusterPassword", "statsPassword", "sshPrivateKey", "fencePassword", "fenceSshKey", "fenceXvmKey")

# Regular expressions, each matched in full (never with `^...$`: see the module docstring).
HOSTNAME = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
DOMAIN = rf"{HOSTNAME}(\.{HOSTNAME})*"
NAME_PREFIX = r"[a-z0-9][a-z0-9-]{0,61}"
IFNAME = r"[A-Za-z0-9_.-]{1,15}"
MAC = r"([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}"
SSH_PUBLIC_KEY = (
    r"(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+) [A-Za-z0-9+/]+={0,3}( [^\x00-\x1f\x7f]*)?"
)
IDENT = r"[A-Za-z][A-Za-z0-9_.-]*"  # Pacemaker ids and HAProxy proxy names
LIBVIRT_NAME = r"[A-Za-z0-9_.+-]+"
ONE_LINE = r"[^\x00-\x1f\x7f]+"  # no control character: no line break, tab or NUL
USER_NAME = r"[a-z_][a-z0-9_-]{0,31}"
PACKAGE_NAME = r"[a-z0-9][a-z0-9+.-]+"  # Debian policy 5.6.1
AGENT_PARAM = r"[a-z][a-z0-9_-]*"
# Pacemaker reads m and min as minutes; HAProxy knows us, ms, s, m, h and d, but not min.
PACEMAKER_DURATION = r"[0-9]+(ms|s|m|min|h)?"
PACEMAKER_NONZERO_DURATION = r"0*[1-9][0-9]*(ms|s|m|min|h)?"
HAPROXY_NONZERO_DURATION = r"0*[1-9][0-9]*(us|ms|s|m|h|d)?"
# libvirt URIs the provider (terraform-provider-libvirt 0.8.1) can open: a local socket, or a host over ssh, tcp or
# tls, with no port (see `_libvirt_uri_hint`), the system or session daemon, and optional `?key=value` parameters.
_URI_QUERY = r"(\?[A-Za-z0-9_]+=[A-Za-z0-9_./~%:@,+-]*(&[A-Za-z0-9_]+=[A-Za-z0-9_./~%:@,+-]*)*)?"
LIBVIRT_URI = (
    rf"(qemu(\+unix)?:///(system|session)|qemu(\+(ssh|tcp|tls))?://([A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+/(system|session))"
    rf"{_URI_QUERY}"
)
_LIBVIRT_URI_WITH_PORT = re.compile(r"qemu(\+[a-z0-9]+)?://([^/@]+@)?[A-Za-z0-9.-]+:[0-9]*/.*", re.DOTALL)
# Secrets. The stats password lands in `stats auth user:password`, an unquoted HAProxy word.
STATS_PASSWORD = r"[A-Za-z0-9._~!@%^*+=,;?-]{8,128}"
HACLUSTER_PASSWORD = r"[ -~]{8,128}"
FENCE_PASSWORD = r"[!-~]([ -~]{0,18}[!-~])?"  # no space at either end: fence agents strip the password
FENCE_XVM_KEY = r"[A-Za-z0-9+/=]{32,4096}"  # printable ASCII: chpasswd and pcs read it as one line
SSH_PRIVATE_KEY = (
    r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----\n(?:[A-Za-z0-9+/=]{1,76}\n)+-----END \1PRIVATE KEY-----\n?"
)


def _shown(value: str) -> str:
    """A refused (non-secret) value as the message shows it: quoted, escapes visible, cut when long."""
    text = repr(value)
    return text if len(text) <= 60 else text[:56] + "...'"


@dataclass(frozen=True)
class FullMatch:
    """A text rule for a model field: the whole value must match `regex`, or it is refused with `expected` in words.

    The JSON Schema carries the same rule as `pattern`, anchored for ECMAScript, where `$` ends the text.
    """

    regex: str
    expected: str
    """What the key takes, in words (the refusal reads "<value> is not <expected>")."""
    hint: Callable[[str], str | None] | None = None
    """A better message for a known kind of refused value."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        compiled = re.compile(self.regex)

        def check(value: str) -> str:
            if compiled.fullmatch(value) is None:
                hint = self.hint(value) if self.hint else None
                message = hint or f"{_shown(value)} is not {self.expected}"
                raise PydanticCustomError("format", message)
            return value

        return core_schema.no_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = f"^(?:{self.regex})$"
        return json_schema


def _libvirt_uri_hint(value: str) -> str | None:
    if _LIBVIRT_URI_WITH_PORT.fullmatch(value):
        return (
            f"{_shown(value)} has a port: terraform-provider-libvirt 0.8.1 dials host:port as a host name and fails, "
            "and ignores Port in ~/.ssh/config; drop the port and have the hypervisor's sshd answer on port 22 "
            "(listening there, or with port 22 forwarded to it)"
        )
    return None


Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]
Port = Annotated[int, Strict(), Field(ge=1, le=65535)]
Name = Annotated[str, FullMatch(HOSTNAME, "a host name: 1-63 of a-z, 0-9 and -, not starting or ending with -")]
Ident = Annotated[str, FullMatch(IDENT, "a name: a letter, then letters, digits, _ . or -")]
IfName = Annotated[str, FullMatch(IFNAME, "an interface name: 1-15 letters, digits, _ . or -")]
UrlPath = Annotated[str, FullMatch(r"/[A-Za-z0-9/._~%-]*", "a URL path: / then letters, digits and /._~%-")]
OneLine = Annotated[str, FullMatch(ONE_LINE, "one line of text: no line break, tab or other control character")]
LibvirtName = Annotated[str, FullMatch(LIBVIRT_NAME, "a libvirt name: letters, digits, _ . + or -")]
LibvirtUri = Annotated[
    str,
    FullMatch(
        LIBVIRT_URI,
        "a libvirt URI like qemu:///system or qemu+ssh://user@host/system (transport ssh, tcp, tls or unix; "
        "path /system or /session)",
        hint=_libvirt_uri_hint,
    ),
]
SshPublicKey = Annotated[
    str, FullMatch(SSH_PUBLIC_KEY, 'an OpenSSH public key on one line ("ssh-ed25519 AAAA... comment")')
]
Duration = Annotated[
    str, FullMatch(PACEMAKER_DURATION, "a duration: a whole number with an optional unit ms, s, min or h, like 10s")
]
# A monitor with interval 0 is no monitor at all to Pacemaker; a timeout of 0 fails every run.
NonZeroDuration = Annotated[
    str,
    FullMatch(
        PACEMAKER_NONZERO_DURATION,
        "a duration above zero: a whole number with an optional unit ms, s, min or h, like 10s (0 turns it off)",
    ),
]
# HAProxy reads a timeout of 0 as none at all.
HaproxyDuration = Annotated[
    str,
    FullMatch(
        HAPROXY_NONZERO_DURATION,
        "an HAProxy duration above zero: a whole number with an optional unit us, ms, s, m, h or d, like 5s",
    ),
]


class Model(BaseModel):
    """Base of every settings model: camelCase keys in config, unknown keys refused, immutable.

    Field docstrings are the descriptions of the JSON Schema (components/schema.py)."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        use_attribute_docstrings=True,
        field_title_generator=lambda name, info: info.alias or name,
    )


class LibvirtNetwork(Model):
    """Where node NICs attach: an existing libvirt network, a host bridge, or a NAT network the stack creates.

    One of the three; with none set, the existing network `default`.
    """

    name: LibvirtName | None = "default"
    """An existing libvirt network."""
    bridge: IfName | None = None
    """A host bridge (for nodes spread over several hypervisors)."""
    create: Bool = False
    """Create a NAT network with `network.cidr` (one hypervisor only)."""


class LibvirtSettings(Model):
    uri: LibvirtUri = "qemu:///system"
    """Default libvirt connection URI; a node may name its own (`hostUri`). No port: see the README."""
    pool: LibvirtName = "default"
    """Storage pool for the base image, node disks and cloud-init ISOs."""
    base_image: OneLine = "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2"
    """Debian 12 qcow2 image: a URL, or a path on the machine running Pulumi (the provider uploads it)."""
    network: LibvirtNetwork = LibvirtNetwork()


class NodeSpec(Model):
    """One node of an explicit node list."""

    name: Name
    address: ipaddress.IPv4Address
    mac: Annotated[str, FullMatch(MAC, "a MAC address like 52:54:00:12:34:56")] | None = None
    """Default: derived from the cluster and node names (52:54:00:xx:xx:xx)."""
    vcpu: Annotated[Int, Field(ge=1)] | None = None
    memory_mib: Annotated[Int, Field(ge=512)] | None = None
    disk_gib: Annotated[Int, Field(ge=4)] | None = None
    host_uri: LibvirtUri | None = None
    """libvirt URI of the hypervisor this node runs on. Default: `libvirt.uri`."""


class NodesSettings(Model):
    count: Int = Field(default=2, le=MAX_NODES)
    """Node count when no explicit list is given: names `<namePrefix>1..N`, consecutive addresses."""
    name_prefix: Annotated[
        str, FullMatch(NAME_PREFIX, "a host name prefix: a-z or 0-9, then up to 61 of a-z, 0-9 and -")
    ] = "lb"
    """Node names are the prefix and the node's number; each must be a host name of at most 63 characters."""
    vcpu: Int = Field(default=2, ge=1)
    memory_mib: Int = Field(default=1024, ge=512)
    disk_gib: Int = Field(default=10, ge=4)
    list_: list[NodeSpec] | None = Field(default=None, alias="list", max_length=MAX_NODES)
    """Explicit nodes; overrides count and namePrefix."""


class NetworkSettings(Model):
    cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("192.168.122.0/24")
    gateway: ipaddress.IPv4Address | None = None
    """Default: the first address of the CIDR."""
    dns: list[ipaddress.IPv4Address] | None = None
    """Default: the gateway."""
    first_address: ipaddress.IPv4Address | None = None
    """First node address when nodes are counted. Default: the CIDR's 11th address."""
    interface: IfName = "eth0"
    """Name cloud-init gives the node's NIC (matched by MAC)."""
    domain: Annotated[str, FullMatch(DOMAIN, "a DNS domain: lower-case labels (a-z, 0-9, -) joined by dots")] = (
        "lb.internal"
    )
    """DNS domain of node FQDNs."""


class VipSettings(Model):
    address: ipaddress.IPv4Address
    netmask: Int | None = Field(default=None, ge=1, le=32)
    """Prefix length, no wider than the network's. Default: the network's."""
    nic: IfName | None = None
    """Interface IPaddr2 brings the VIP up on. Default: `network.interface`."""


class MonitorSettings(Model):
    interval: NonZeroDuration
    timeout: NonZeroDuration


UserName = Annotated[str, FullMatch(USER_NAME, "a user name: 1-32 of a-z, 0-9, _ and -, starting with a-z or _")]
HostOrAddress = Annotated[str, FullMatch(DOMAIN, "a host name or IPv4 address (lower-case labels joined by dots)")]
IpmiUser = Annotated[str, FullMatch(r"[A-Za-z0-9_.@-]{1,16}", "an IPMI user name: 1-16 letters, digits, _ . @ or -")]


class VirshFencing(Model):
    """fence_virsh: a surviving node logs in to the lost node's hypervisor over SSH (the secret `fenceSshKey`) and
    powers its domain off with `virsh destroy`."""

    user: UserName | None = None
    """Hypervisor user. Default: the user of a `qemu+ssh://user@host/...` URI, else root (not root: through sudo)."""
    address: HostOrAddress | None = None
    """The hypervisor as the nodes reach it. Default: the host of the node's libvirt URI; for a local URI
    (`qemu:///system`), `network.gateway` (the host's address on a libvirt NAT network)."""


class IpmiFencing(Model):
    """fence_ipmilan: each node's BMC (IPMI over LAN); its password is the secret `fencePassword`."""

    user: IpmiUser = "admin"
    addresses: dict[Name, ipaddress.IPv4Address]
    """The BMC address of every node, by node name."""
    lanplus: Bool = True
    """IPMI 2.0 (RMCP+): encrypted sessions. Off only for BMCs that speak IPMI 1.5 alone."""
    port: Port = 623


class FencingSettings(Model):
    """How a lost node is powered off before its resources start elsewhere."""

    agent: Literal["fence_virsh", "fence_xvm", "fence_ipmilan"] = "fence_virsh"
    """`fence_virsh` (SSH to the hypervisor), `fence_xvm` (fence_virtd on the hypervisors, key `fenceXvmKey`) or
    `fence_ipmilan` (bare metal, `ipmi`)."""
    virsh: VirshFencing = VirshFencing()
    ipmi: IpmiFencing | None = None
    priority_delay: Duration = "5s"
    """`priority-fencing-delay`: in a partition without a majority (two nodes cut apart), fencing the node that holds
    the VIP waits this long, so that node wins the race; longer than a fence takes, or both may die."""
    failure_timeout: Duration = "2min"
    """`failure-timeout` of every fence device: a device whose start or monitor failed (its BMC or hypervisor
    unreachable for a minute) is banned from that node, and once banned from every node its node cannot be fenced;
    this long after its last failure it may run, and fence, again (0 would keep it banned until a cleanup by hand)."""


class QuorumDeviceSettings(Model):
    """An arbiter VM running corosync-qnetd: one more vote, cast by a host outside the cluster for the partition it
    chooses. Two nodes cut apart then need no fence race (the side without its vote stops by itself), and an even
    cluster split in half keeps one half."""

    address: ipaddress.IPv4Address
    """The arbiter's static address on the node network."""
    name: Name = "qnetd"
    """Host name of the arbiter VM (libvirt domain `<cluster.name>-<name>`)."""
    host_uri: LibvirtUri | None = None
    """libvirt URI of the hypervisor it runs on: best one that runs no node. Default: `libvirt.uri`."""
    algorithm: Literal["ffsplit", "lms"] = "ffsplit"
    """qnetd's decision: `ffsplit` gives its vote to exactly one half of a 50:50 split (the one holding the VIP);
    `lms` (last man standing) to the partition with most nodes, even down to one."""
    vcpu: Int = Field(default=1, ge=1)
    memory_mib: Int = Field(default=512, ge=512)
    disk_gib: Int = Field(default=4, ge=4)


class ClusterSettings(Model):
    # Not starting with -: pcs would read it as an option (`--help` even exits 0 without setting anything up).
    name: Annotated[
        str,
        FullMatch(
            r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}", "a cluster name: 1-32 letters, digits, _ or -, not starting with -"
        ),
    ] = "ha-lb"
    profile: Literal["default", "fast"] = "default"
    """Failover profile: defaults for tokenMs and placement (README, "Failover profiles")."""
    token_ms: Int | None = Field(default=None, ge=200, le=60000)
    """Corosync totem token: a silent node is declared dead after token + consensus (1.2 x token). Default: the
    profile's."""
    stickiness: Int = Field(default=100, ge=0)
    """resource-stickiness: resources stay where they run when a failed node returns."""
    migration_threshold: Int = Field(default=3, ge=1)
    """Failures on a node before a resource moves away from it."""
    dc_deadtime: Duration = "5s"
    """How long a starting node waits for a DC before holding an election (Pacemaker's default, 20s, is most of a
    fresh cluster's start-up; nodes started together by `pcs cluster start --all` need far less)."""
    recheck_interval: Duration = "2min"
    """cluster-recheck-interval: how often Pacemaker looks again without an event. After 10 failed attempts to fence
    a node (`stonith-max-attempts`: minutes against a BMC or hypervisor that does not answer, seconds once its device
    is banned), it tries again only on an event or then; Pacemaker's 15min would leave the VIP down that long after
    the fence device answers again."""
    failure_timeout: Duration = "10min"
    """When a node's fail count expires, so it may host the resource again (0: never)."""
    transition_delay: Duration = "50ms"
    """transition-delay: how long the DC waits after an event (a node lost) before it has the scheduler place the
    resources again. Pacemaker 2.1's DC sleeps a whole second when its query of the CIB returns while its own CIB
    writes for that event are still on their way round the corosync ring (with 3 or more nodes, nearly always);
    waiting first lets them land. Long enough for that, and no longer: each ms of it is on every recovery's path. At
    3 nodes 25, 50 and 100 ms all spared the 1 s re-ask; at 5 nodes (on 2 cores) 25 ms missed it in 2 of 10 kills,
    50 ms in none of 20 (README, "Failover profiles")."""
    vip_monitor: MonitorSettings = MonitorSettings(interval="10s", timeout="20s")
    haproxy_monitor: MonitorSettings = MonitorSettings(interval="5s", timeout="20s")
    no_quorum_policy: Literal["stop", "freeze", "ignore", "demote"] = "stop"
    """`stop` is right for 2 nodes too: corosync's two_node keeps quorum on the survivor."""
    stonith: Bool = True
    """Fencing on (default) or off; off makes a warning at preview: a hung node can then keep the VIP while
    another node takes it."""
    fencing: FencingSettings = FencingSettings()
    quorum_device: QuorumDeviceSettings | None = None
    """An arbiter (corosync-qnetd) VM outside the cluster; none by default."""
    placement: Literal["with-vip", "everywhere"] | None = None
    """`with-vip`: HAProxy runs only where the VIP is. `everywhere`: a clone on every node; only the VIP moves.
    Default: the profile's."""


class SshSettings(Model):
    user: Annotated[str, FullMatch(USER_NAME, "a user name: 1-32 of a-z, 0-9, _ and -, starting with a-z or _")] = (
        "debian"
    )
    """Admin user cloud-init creates (passwordless sudo); Pulumi connects as this user."""
    port: Port = 22
    authorized_keys: list[SshPublicKey] = []
    """Extra public keys allowed to log in as the admin user."""
    ca_public_key: SshPublicKey | None = None
    """SSH CA public key sshd trusts for user certificates (TrustedUserCAKeys)."""


class Server(Model):
    name: Ident
    address: str
    """host:port"""
    check: Bool = True
    options: Annotated[
        str, FullMatch(r"[A-Za-z0-9 ._:-]*", "HAProxy server keywords: letters, digits, spaces and . _ : - on one line")
    ] = "inter 2s fall 3 rise 2"


class Backend(Model):
    name: Ident
    mode: Literal["tcp", "http"] = "tcp"
    balance: Literal["roundrobin", "static-rr", "leastconn", "first", "source"] = "roundrobin"
    check_path: UrlPath | None = None
    """HTTP health-check path (http mode); tcp backends get `option tcp-check`."""
    servers: list[Server]


class Frontend(Model):
    name: Ident
    port: Port
    mode: Literal["tcp", "http"] = "tcp"
    backend: Ident


class StatsSettings(Model):
    port: Port = 32700
    user: Annotated[str, FullMatch(r"[A-Za-z0-9_.-]+", "a user name: letters, digits, _ . or -")] = "admin"
    uri: Annotated[str, FullMatch(r"/[A-Za-z0-9/._~-]*", "a URL path: / then letters, digits and /._~-")] = "/"
    refresh: HaproxyDuration = "10s"


class TimeoutSettings(Model):
    connect: HaproxyDuration = "5s"
    client: HaproxyDuration = "50s"
    server: HaproxyDuration = "50s"
    check: HaproxyDuration = "5s"


def _kube_apiserver_backend() -> list[Backend]:
    servers = [Server(name=f"kube-mast0{i}", address=f"kube-mast0{i}:6443") for i in (1, 2, 3)]
    return [Backend(name="kubernetes-master-nodes", servers=servers)]


class HaproxySettings(Model):
    maxconn: Int = Field(default=4096, ge=1, le=1_000_000)
    """Beyond about a million HAProxy cannot allocate its tables on a node (it passes `haproxy -c`, then fails to
    start)."""
    frontends: list[Frontend] = [Frontend(name="kubernetes-apiserver", port=6443, backend="kubernetes-master-nodes")]
    backends: list[Backend] = Field(default_factory=_kube_apiserver_backend)
    timeouts: TimeoutSettings = TimeoutSettings()
    stats: StatsSettings = StatsSettings()


class CloudInitSettings(Model):
    timezone: Annotated[str, FullMatch(r"[A-Za-z0-9_+/-]+", "a time zone like UTC or Europe/Berlin")] = "UTC"
    locale: Annotated[str, FullMatch(r"[A-Za-z0-9_.@-]+", "a locale like C.UTF-8 or en_US.UTF-8")] = "C.UTF-8"
    package_update: Bool | None = None
    """Run `apt-get update` at first boot even with no package to install (cloud-init's package module updates the
    indexes before it installs anything anyway). Default: true; false with packagesInImage."""
    package_upgrade: Bool = False
    """Upgrade every package at first boot."""
    extra_packages: list[
        Annotated[str, FullMatch(PACKAGE_NAME, "a Debian package name: a-z or 0-9, then a-z, 0-9, + . or -")]
    ] = []
    """Debian packages to install besides the cluster stack (names only)."""
    packages_in_image: Bool = False
    """The base image already holds every package (`scripts/bake-image`): first boot installs none and (unless
    packageUpdate is set true) reads no package index, so needs no mirror; a VM whose image lacks one fails its first
    boot, naming it."""


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
    """Everything a stack sets, one config key of the project's namespace per field (`ha-lb:vip`, ...)."""

    libvirt: LibvirtSettings = LibvirtSettings()
    """Hypervisor connection, storage pool, base image and the network node NICs attach to."""
    nodes: NodesSettings = NodesSettings()
    """Counted nodes (count, namePrefix) or an explicit list, and their size."""
    network: NetworkSettings = NetworkSettings()
    """The node network: CIDR, gateway, DNS, first address, NIC name and DNS domain."""
    vip: VipSettings
    """The floating IP. Required."""
    cluster: ClusterSettings = ClusterSettings()
    """Corosync and Pacemaker: failover profile, monitors, quorum policy, fencing, placement."""
    ssh: SshSettings = SshSettings()
    """The admin user Pulumi connects as, and the keys it accepts."""
    haproxy: HaproxySettings = HaproxySettings()
    """Frontends bound to the VIP, backends, timeouts and the stats page."""
    cloud_init: CloudInitSettings = CloudInitSettings()
    """First boot: time zone, locale, package update/upgrade, extra packages."""

    model_config = ConfigDict(ignored_types=(cached_property,))

    @cached_property
    def node_list(self) -> list[Node]:
        """Every node, in order, defaults resolved (addresses, deterministic MACs, resources, host URI)."""
        n, specs = self.nodes, self.nodes.list_
        if specs is None:
            start = self.network.first_address or self.network.cidr.network_address + 11
            # Not validated again: check_settings has checked the names these make (a long prefix makes too long ones).
            specs = [NodeSpec.model_construct(name=name, address=start + i) for i, name in enumerate(counted_names(n))]
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

    @cached_property
    def arbiter(self) -> Node | None:
        """The quorum device's VM, defaults resolved; None without one."""
        qd = self.cluster.quorum_device
        if qd is None:
            return None
        return Node(
            name=qd.name,
            address=qd.address,
            mac=derive_mac(self.cluster.name, qd.name),
            vcpu=qd.vcpu,
            memory_mib=qd.memory_mib,
            disk_gib=qd.disk_gib,
            host_uri=qd.host_uri or self.libvirt.uri,
            fqdn=f"{qd.name}.{self.network.domain}",
        )

    @property
    def vms(self) -> list[Node]:
        """Every VM of the stack: the nodes, then the arbiter if there is one."""
        return [*self.node_list, *([self.arbiter] if self.arbiter else [])]

    @property
    def token_ms(self) -> int:
        return self.cluster.token_ms or FAILOVER_PROFILES[self.cluster.profile].token_ms

    @property
    def package_update(self) -> bool:
        ci = self.cloud_init
        return ci.package_update if ci.package_update is not None else not ci.packages_in_image

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
        return self.cluster.stonith

    @property
    def first_node(self) -> Node:
        """The node one-time cluster steps run on."""
        return self.node_list[0]


def derive_mac(cluster: str, node: str) -> str:
    """A stable locally administered MAC in QEMU's 52:54:00 range, from the cluster and node names."""
    digest = hashlib.sha256(f"{cluster}/{node}".encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


def counted_names(n: NodesSettings) -> list[str]:
    """Node names when nodes are counted: the prefix and the node's number."""
    return [f"{n.name_prefix}{i}" for i in range(1, n.count + 1)]


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


def _kind(value: Any) -> str:
    """What a wrongly typed value is, in words (the value itself may be long)."""
    if isinstance(value, bool):
        return "true/false"
    for types, words in (((dict,), "an object"), ((list,), "a list"), ((str,), "text"), ((int, float), "a number")):
        if isinstance(value, types):
            return words
    return "empty" if value is None else type(value).__name__


def _words(e: ErrorDetails) -> str:
    """A pydantic error in words with the fix; never a regular expression."""
    kind, ctx, given = e["type"], e.get("ctx", {}), _kind(e.get("input"))
    simple = {
        "extra_forbidden": "unknown key: remove it or check its spelling against the README's config reference",
        "missing": "required: set it in the stack file",
        "ip_v4_network": "not an IPv4 network: write the network address with its prefix, like 192.168.122.0/24",
        "ip_v4_address": "not an IPv4 address: write four numbers 0-255, like 192.168.122.100",
        "model_type": f"must be an object (indented key: value lines), not {given}",
        "model_attributes_type": f"must be an object (indented key: value lines), not {given}",
        "dict_type": f"must be an object (indented key: value lines), not {given}",
        "list_type": f"must be a list (lines starting with -), not {given}",
        "string_type": f"must be text, not {given}",
        "int_type": f"must be a whole number, not {given}",
        "bool_type": f"must be true or false, not {given}",
    }
    if kind in simple:
        return simple[kind]
    if kind == "literal_error":
        return f"must be {ctx['expected']}"
    if kind == "greater_than_equal":
        return f"must be {ctx['ge']} or more"
    if kind == "less_than_equal":
        return f"must be {ctx['le']} or less"
    if kind == "too_long":
        return f"{ctx['actual_length']} items: list at most {ctx['max_length']}"
    if "pattern" in kind:  # no field uses pydantic's patterns (FullMatch words its refusals); kept as a safety net
        return "has a character or form this key does not take: see the README's config reference"
    return str(e["msg"])


def load_settings(raw: Mapping[str, Any]) -> Settings:
    """Validate raw config values (`{"nodes": {...}, ...}`, camelCase keys) into `Settings`, or raise SettingsError."""
    try:
        settings = Settings.model_validate(dict(raw))
    except ValidationError as err:
        raise SettingsError([f"{_key(e['loc'])}: {_words(e)}" for e in err.errors()]) from None
    problems = check_settings(settings)
    if problems:
        raise SettingsError(problems)
    return settings


def check_unknown_keys(keys: Iterable[str]) -> list[str]:
    """Problems for config keys of the project namespace that this program does not read."""
    known = set(SETTINGS_KEYS) | set(SECRET_KEYS)
    return [f"{PROJECT}:{k}: unknown key: the program reads {', '.join(sorted(known))}" for k in keys if k not in known]


# Secrets: each check returns what is wrong and the fix, in words that never include the value.
def _set_secret(key: str) -> str:
    return f"set another with `pulumi config set --secret {key}`"


def hacluster_password_problem(value: str) -> str | None:
    if re.fullmatch(HACLUSTER_PASSWORD, value):
        return None
    return (
        "must be 8-128 printable ASCII characters (letters, digits, punctuation, spaces), with no line break, tab "
        "or other control character: chpasswd and pcs read it as one line; " + _set_secret("haclusterPassword")
    )


def stats_password_problem(value: str) -> str | None:
    if re.fullmatch(STATS_PASSWORD, value):
        return None
    return (
        "must be 8-128 characters of letters, digits and ._~!@%^*+=,;?- (no spaces, quotes, '#', '$' or "
        "backslashes: it is an unquoted word in haproxy.cfg); " + _set_secret("statsPassword")
    )


def ssh_private_key_problem(value: str) -> str | None:
    if re.fullmatch(SSH_PRIVATE_KEY, value):
        return None
    return (
        "must be one unencrypted private key in PEM or OpenSSH form (-----BEGIN ... PRIVATE KEY-----, base64 "
        "lines, -----END ... PRIVATE KEY-----), with no other text, carriage return or control character; set it "
        "from the key file: `cat ~/.ssh/id_ed25519 | pulumi config set --secret sshPrivateKey`"
    )


def fence_password_problem(value: str) -> str | None:
    if re.fullmatch(FENCE_PASSWORD, value):
        return None
    return (
        "must be 1-20 printable ASCII characters (IPMI 2.0 passwords are at most 20 bytes), not starting or ending "
        "with a space (the fence agent strips them), with no line break or control character; "
        + _set_secret("fencePassword")
    )


def fence_xvm_key_problem(value: str) -> str | None:
    if re.fullmatch(FENCE_XVM_KEY, value):
        return None
    return (
        "must be 32-4096 characters of base64 (A-Z, a-z, 0-9, +, /, =) on one line, the same as the key file "
        "fence_virtd uses on the hypervisors; " + _set_secret("fenceXvmKey")
    )


SECRET_CHECKS: dict[str, Callable[[str], str | None]] = {
    "haclusterPassword": hacluster_password_problem,
    "statsPassword": stats_password_problem,
    "sshPrivateKey": ssh_private_key_problem,
    "fencePassword": fence_password_problem,
    "fenceSshKey": ssh_private_key_problem,
    "fenceXvmKey": fence_xvm_key_problem,
}


def check_secrets(given: Mapping[str, str]) -> list[str]:
    """Problems of the secrets set in config (`{"statsPassword": value, ...}`), each naming its key, never its value."""
    problems = []
    for key, value in given.items():
        problem = (
            SECRET_CHECKS[key](value)
            if value
            else f"empty: {_set_secret(key)}, or `pulumi config rm {key}` to have one generated"
        )
        if problem:
            problems.append(f"{PROJECT}:{key}: {problem}")
    return problems


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
    p = _check_network(s)
    nodes_ok = not (node_problems := _check_node_count(s))
    p.extend(node_problems)
    if nodes_ok:
        p.extend(_check_nodes(s))
        p.extend(_check_fencing_nodes(s))
        p.extend(_check_arbiter(s))
    p.extend(_check_libvirt_network(s))
    p.extend(_check_haproxy(s))
    p.extend(_check_time_zone(s.cloud_init.timezone))
    p.extend(_check_transition_delay(s))
    return p


MAX_TRANSITION_DELAY_MS = 1000


def duration_ms(value: str) -> int:
    """A Pacemaker duration in ms (a bare number is seconds, as Pacemaker reads it)."""
    number, unit = re.fullmatch(r"([0-9]+)([a-z]*)", value).groups()  # type: ignore[union-attr]
    return int(number) * {"ms": 1, "": 1000, "s": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000}[unit]


def _check_transition_delay(s: Settings) -> list[str]:
    delay = s.cluster.transition_delay
    if duration_ms(delay) <= MAX_TRANSITION_DELAY_MS:
        return []
    return [
        f"{PROJECT}:cluster.transitionDelay: {delay} would hold every recovery (a node lost, a failed resource) that "
        f"long: at most {MAX_TRANSITION_DELAY_MS}ms (a bare number is seconds; write 50ms)"
    ]


def _check_time_zone(zone: str) -> list[str]:
    # cloud-init fails on a zone the node's tzdata lacks, after the VMs exist. The zones known here stand in for
    # the node's (both Debian's tzdata); a machine with none known checks nothing.
    known = zoneinfo.available_timezones()
    if not known or zone in known:
        return []
    return [f"{PROJECT}:cloudInit.timezone: {_shown(zone)} is not a time zone (like UTC or Europe/Berlin)"]


def _check_network(s: Settings) -> list[str]:
    p: list[str] = []
    k = f"{PROJECT}:"
    net = s.network.cidr
    gateway = s.network.gateway
    if gateway is not None and gateway not in net:
        p.append(f"{k}network.gateway: {gateway} is outside network.cidr {net}")
    elif gateway is not None and gateway in (net.network_address, net.broadcast_address):
        p.append(f"{k}network.gateway: {gateway} is the network or broadcast address of {net}: pick a host address")
    if s.vip.netmask is not None and s.vip.netmask < net.prefixlen:
        p.append(
            f"{k}vip.netmask: /{s.vip.netmask} is wider than network.cidr {net}: IPaddr2 would claim addresses "
            f"beyond the node network on the NIC; set {net.prefixlen} or more, or leave it unset"
        )
    return p


def _check_node_count(s: Settings) -> list[str]:
    """Problems that stop the node list from being built: too few nodes, addresses that do not fit, bad names."""
    k, n, net = f"{PROJECT}:", s.nodes, s.network.cidr
    if n.list_ is not None:
        return [] if len(n.list_) >= 2 else [f"{k}nodes.list: {len(n.list_)} node(s) cannot fail over: list 2 or more"]
    if n.count < 2:
        return [f"{k}nodes.count: {n.count} nodes cannot fail over: set 2 or more"]
    first = s.network.first_address or net.network_address + 11
    if s.network.first_address is not None and first not in net:
        return [f"{k}network.firstAddress: {first} is outside network.cidr {net}: pick an address inside it"]
    last = first + (n.count - 1) if int(first) + n.count - 1 <= 0xFFFFFFFF else None
    if last is None or last not in net or last == net.broadcast_address:
        return [
            f"{k}nodes.count: {n.count} consecutive addresses from {first} do not fit in {net}: "
            "lower the count, move network.firstAddress, or widen network.cidr"
        ]
    longest = f"{n.name_prefix}{n.count}"
    if not re.fullmatch(HOSTNAME, longest):
        return [
            f"{k}nodes.namePrefix: makes node names like {longest!r} ({len(longest)} characters), but a host name "
            f"has at most 63: shorten the prefix to {63 - len(str(n.count))} characters or fewer"
        ]
    return []


def _node_key(s: Settings, i: int, node: Node) -> str:
    """The key a node's problem names: its list entry, or for counted nodes the settings that made it."""
    return f"{PROJECT}:nodes.list[{i}]" if s.nodes.list_ is not None else f"{PROJECT}:nodes (node {node.name})"


def _check_nodes(s: Settings) -> list[str]:
    p: list[str] = []
    k = f"{PROJECT}:"
    nodes = s.node_list
    names = [x.name for x in nodes]
    for what in ("name", "address", "mac"):
        seen: dict[str, int] = {}
        for i, node in enumerate(nodes):
            value = str(getattr(node, what))
            # Two nodes of one name also derive one MAC: the name is the problem to report.
            derived_twice = what == "mac" and names.index(node.name) < i
            if value in seen and not derived_twice:
                p.append(
                    f"{_node_key(s, i, node)}.{what}: {value} is also the {what} of node {seen[value] + 1} "
                    f"({nodes[seen[value]].name}): each node needs its own"
                )
            else:
                seen[value] = i
    for i, node in enumerate(nodes):
        key = _node_key(s, i, node)
        p.extend(_check_address(f"{key}.address" if s.nodes.list_ is not None else key, node.address, s))
        if int(node.mac[:2], 16) & 1:
            p.append(f"{key}.mac: {node.mac} is a multicast MAC: the first octet must be even")
        if len(node.fqdn) > 253:
            p.append(f"{k}network.domain: node FQDN {node.fqdn[:40]}... is longer than 253 characters: shorten it")
    host_uris = {x.host_uri for x in nodes}
    if s.libvirt.network.create and len(host_uris) > 1:
        p.append(
            f"{k}libvirt.network.create: a NAT network lives on one hypervisor, but nodes use "
            f"{len(host_uris)} host URIs: attach them to a shared bridge (libvirt.network.bridge)"
        )
    p.extend(_check_address(f"{k}vip.address", s.vip.address, s))
    if s.vip.address in [x.address for x in nodes]:
        p.append(f"{k}vip.address: {s.vip.address} is also a node address: the VIP needs an address of its own")
    return p


def _check_arbiter(s: Settings) -> list[str]:
    arb = s.arbiter
    if arb is None:
        return []
    k = f"{PROJECT}:cluster.quorumDevice"
    p = _check_address(f"{k}.address", arb.address, s)
    for n in s.node_list:
        if arb.address == n.address:
            p.append(f"{k}.address: {arb.address} is also the address of node {n.name}: the arbiter needs its own")
        if arb.name == n.name:
            p.append(f"{k}.name: {arb.name} is also a node's name: name the arbiter apart (e.g. qnetd)")
        if arb.mac == n.mac:
            p.append(f"{k}.name: {arb.name} derives the MAC of node {n.name}: pick another name")
    if arb.address == s.vip.address:
        p.append(f"{k}.address: {arb.address} is the VIP: the arbiter needs an address of its own")
    if s.libvirt.network.create and arb.host_uri != s.first_node.host_uri:
        p.append(
            f"{k}.hostUri: a created NAT network lives on the nodes' hypervisor: the arbiter must share it, or "
            "attach everything to a shared bridge (libvirt.network.bridge)"
        )
    return p


def _check_fencing_nodes(s: Settings) -> list[str]:
    f = s.cluster.fencing
    k = f"{PROJECT}:cluster.fencing"
    names = [x.name for x in s.node_list]
    if f.agent != "fence_ipmilan":
        return [f"{k}.ipmi: set only with agent fence_ipmilan: remove it or set agent"] if f.ipmi else []
    if f.ipmi is None:
        return [f"{k}.ipmi: required with agent fence_ipmilan: give addresses (each node's BMC) and user"]
    p = [
        f"{k}.ipmi.addresses: no BMC address for node {name}: add `{name}: <address>`"
        for name in names
        if name not in f.ipmi.addresses
    ]
    p += [
        f"{k}.ipmi.addresses.{name}: {name!r} is not a node of this stack ({', '.join(names)})"
        for name in f.ipmi.addresses
        if name not in names
    ]
    nodes = {str(x.address) for x in s.node_list} | {str(s.vip.address)}
    p += [
        f"{k}.ipmi.addresses.{name}: {addr} is a node's or the VIP's address: a BMC must be reachable when its "
        "node is not, so it needs an address of its own"
        for name, addr in f.ipmi.addresses.items()
        if str(addr) in nodes
    ]
    return p


def _duplicates(names: Iterable[str]) -> list[tuple[int, str, int]]:
    """(index, name, index of its first use) for every name used before."""
    first: dict[str, int] = {}
    found = []
    for i, name in enumerate(names):
        if name in first:
            found.append((i, name, first[name]))
        else:
            first[name] = i
    return found


def _check_libvirt_network(s: Settings) -> list[str]:
    p: list[str] = []
    k = f"{PROJECT}:"
    lib = s.libvirt.network
    chosen = ["name" in lib.model_fields_set and lib.name is not None, lib.bridge is not None, lib.create]
    if sum(chosen) > 1:
        p.append(f"{k}libvirt.network: set one of name (an existing network), bridge, or create: true, not several")
    f = s.cluster.fencing
    uris = {n.host_uri for n in s.node_list}
    if s.stonith_enabled and f.agent == "fence_xvm" and len(uris) > 1:
        p.append(
            f"{k}cluster.fencing.agent: fence_xvm through fence_virtd's libvirt backend serves one hypervisor, but "
            f"nodes use {len(uris)} host URIs: use fence_virsh (or fence_virtd's cpg backend and fence_virsh here)"
        )
    if s.stonith_enabled and f.agent == "fence_virsh" and any(u.endswith("/session") for u in uris):
        p.append(
            f"{k}cluster.fencing.agent: fence_virsh runs virsh as root (or through sudo), which sees qemu:///system, "
            "not a user's session daemon: run the nodes under /system, or fence another way"
        )
    local = any("://" in n.host_uri and n.host_uri.split("://", 1)[1].startswith("/") for n in s.node_list)
    if s.stonith_enabled and f.agent == "fence_virsh" and f.virsh.address is None and local and lib.bridge:
        p.append(
            f"{k}cluster.fencing.virsh.address: required with libvirt.network.bridge and a local libvirt URI: the "
            "network's gateway is then a router, not the hypervisor; give the hypervisor's address on that network"
        )
    return p


def _check_haproxy(s: Settings) -> list[str]:
    h = s.haproxy
    p = _check_proxy_names(h)
    p.extend(_check_frontends(h))
    for i, b in enumerate(h.backends):
        p.extend(_check_backend(f"{PROJECT}:haproxy.backends[{i}]", b))
    return p


def _check_proxy_names(h: HaproxySettings) -> list[str]:
    # A frontend and a backend may share a name; two of a kind may not, nor anything named like the stats section.
    p: list[str] = []
    for kind, names in (("frontends", [f.name for f in h.frontends]), ("backends", [b.name for b in h.backends])):
        for i, name, first in _duplicates(["stats", *names]):
            what = "the stats page's section" if first == 0 else f"{kind}[{first - 1}]"
            p.append(f"{PROJECT}:haproxy.{kind}[{i - 1}].name: the name {name!r} is taken by {what}: rename")
    return p


def _check_frontends(h: HaproxySettings) -> list[str]:
    p: list[str] = []
    k = f"{PROJECT}:haproxy."
    backends = {b.name: b for b in h.backends}
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
    return p


def _check_backend(key: str, b: Backend) -> list[str]:
    p: list[str] = []
    if not b.servers:
        p.append(f"{key}.servers: backend {b.name} has no servers: list at least one host:port")
    if b.check_path is not None and b.mode != "http":
        p.append(f"{key}.checkPath: only http backends take an HTTP health check")
    for j, dup, first in _duplicates(x.name for x in b.servers):
        p.append(f"{key}.servers[{j}].name: {dup!r} is also the name of servers[{first}]: names must be unique")
    for j, srv in enumerate(b.servers):
        problem = _server_address_problem(srv.address)
        if problem:
            p.append(f"{key}.servers[{j}].address: {problem}")
    return p


def _server_address_problem(address: str) -> str | None:
    host, sep, port = address.rpartition(":")
    if not sep or not host:
        return f"{_shown(address)} has no port: write host:port"
    if not re.fullmatch(r"[0-9]{1,5}", port) or not 1 <= int(port) <= 65535:
        return f"port {_shown(port)} is not 1-65535"
    if not (_is_ipv4(host) or re.fullmatch(DOMAIN, host)):
        return f"{_shown(host)} is neither an IPv4 address nor a host name"
    if not _is_ipv4(host) and re.fullmatch(r"[0-9.]+", host):
        # glibc and HAProxy read 10.0.1 as 10.0.0.1: an address with a part missing, not a name.
        return f"{_shown(host)} is an incomplete IPv4 address: write all four numbers"
    return None


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
            "fencing is off (cluster.stonith: false): a node that hangs rather than dies, or a cut cluster link, "
            "leaves the VIP on two nodes at once (clients split between them), and a lost node's resources start "
            "elsewhere unchecked; set up cluster.fencing and turn it on for production"
        )
    qd = s.cluster.quorum_device
    if qd is not None and qd.algorithm == "ffsplit" and len(s.node_list) % 2:
        w.append(
            f"cluster.quorumDevice: ffsplit breaks ties, and {len(s.node_list)} nodes never split evenly: the arbiter "
            "only adds a vote to lose (with one node down, losing the arbiter too stops the cluster); use "
            "algorithm lms, or no quorum device"
        )
    if s.cluster.no_quorum_policy == "ignore" and len(s.node_list) >= 3:
        w.append("cluster.noQuorumPolicy: ignore lets a minority partition keep running resources: use stop")
    return w
