"""Settings: defaults, derived values, and a clear error for every kind of bad input."""

import copy
import ipaddress
from typing import Any, get_args

import pytest
from pydantic import BaseModel

from components.settings import (
    FullMatch,
    Settings,
    SettingsError,
    check_secrets,
    check_unknown_keys,
    derive_mac,
    load_settings,
    warnings_for,
)

BASE: dict[str, Any] = {"vip": {"address": "10.0.0.100"}, "network": {"cidr": "10.0.0.0/24"}}
IPMI = {"lb1": "10.0.9.1", "lb2": "10.0.9.2"}


def with_(patch: dict[str, Any]) -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return raw


def servers(*addresses: str) -> list[dict[str, str]]:
    return [{"name": f"s{i}", "address": a} for i, a in enumerate(addresses)]


def test_defaults_give_two_nodes_with_static_addresses_and_macs() -> None:
    s = load_settings(BASE)
    assert [n.name for n in s.node_list] == ["lb1", "lb2"]
    assert [str(n.address) for n in s.node_list] == ["10.0.0.11", "10.0.0.12"]
    assert s.gateway == ipaddress.IPv4Address("10.0.0.1")
    assert s.vip_prefix == 24 and s.vip_nic == "eth0"
    assert all(n.mac.startswith("52:54:00:") for n in s.node_list)
    assert s.node_list[0].mac != s.node_list[1].mac
    assert (s.placement, s.token_ms) == ("everywhere", 1000) and s.cluster.no_quorum_policy == "stop"


def test_profiles_give_token_and_placement_and_explicit_settings_win() -> None:
    fast = load_settings(with_({"cluster": {"profile": "fast"}}))
    assert (fast.token_ms, fast.placement) == (400, "everywhere")
    mixed = load_settings(with_({"cluster": {"profile": "fast", "tokenMs": 3000, "placement": "with-vip"}}))
    assert (mixed.token_ms, mixed.placement) == (3000, "with-vip")


def test_macs_are_deterministic_and_depend_on_cluster_and_node() -> None:
    assert derive_mac("c", "n1") == derive_mac("c", "n1")
    assert derive_mac("c", "n1") != derive_mac("c", "n2") != derive_mac("d", "n1")


def test_explicit_node_list_overrides_count_and_keeps_per_node_sizes() -> None:
    s = load_settings(
        with_(
            {
                "nodes": {
                    "count": 9,
                    "memoryMib": 2048,
                    "list": [
                        {"name": "a", "address": "10.0.0.21", "hostUri": "qemu+ssh://root@h1/system"},
                        {"name": "b", "address": "10.0.0.22", "memoryMib": 4096, "mac": "52:54:00:AA:BB:CC"},
                    ],
                }
            }
        )
    )
    a, b = s.node_list
    assert (a.memory_mib, b.memory_mib) == (2048, 4096)
    assert a.host_uri == "qemu+ssh://root@h1/system" and b.host_uri == "qemu:///system"
    assert b.mac == "52:54:00:aa:bb:cc"


def test_fencing_is_on_by_default_and_off_only_when_said_with_a_warning() -> None:
    fenced = load_settings(BASE)
    assert fenced.stonith_enabled and fenced.cluster.fencing.agent == "fence_virsh"
    assert not any("fencing is off" in w for w in warnings_for(fenced))
    off = load_settings(with_({"cluster": {"stonith": False}}))
    (warning,) = [w for w in warnings_for(off) if "fencing is off" in w]
    assert "VIP on two nodes" in warning


# (case id, patch over BASE, text that must appear in one problem line: the key, then what is wrong or the fix)
BAD = [
    ("vip-outside", {"vip": {"address": "10.0.1.5"}}, ["ha-lb:vip.address", "outside network.cidr"]),
    ("vip-network-addr", {"vip": {"address": "10.0.0.0"}}, ["ha-lb:vip.address", "network or broadcast"]),
    ("vip-broadcast", {"vip": {"address": "10.0.0.255"}}, ["ha-lb:vip.address", "network or broadcast"]),
    ("vip-gateway", {"vip": {"address": "10.0.0.1"}}, ["ha-lb:vip.address", "gateway"]),
    ("vip-is-node", {"vip": {"address": "10.0.0.11"}}, ["ha-lb:vip.address", "also a node address"]),
    ("vip-not-ip", {"vip": {"address": "10.0.0.300"}}, ["ha-lb:vip.address", "IPv4"]),
    ("vip-missing", {"vip": None}, ["ha-lb:vip"]),
    ("one-node", {"nodes": {"count": 1}}, ["ha-lb:nodes.count", "set 2 or more"]),
    ("one-listed-node", {"nodes": {"list": [{"name": "a", "address": "10.0.0.5"}]}}, ["ha-lb:nodes.list", "2 or more"]),
    (
        "count-overflows",
        {"network": {"cidr": "10.0.0.0/28"}, "vip": {"address": "10.0.0.2"}, "nodes": {"count": 5}},
        ["ha-lb:nodes.count", "do not fit"],
    ),
    (
        "count-over-32",
        {"network": {"cidr": "10.0.0.0/16"}, "nodes": {"count": 33}},
        ["ha-lb:nodes.count", "32 or less"],
    ),
    (
        "dup-names",
        {"nodes": {"list": [{"name": "a", "address": "10.0.0.5"}, {"name": "a", "address": "10.0.0.6"}]}},
        ["ha-lb:nodes.list[1].name", "also the name of node 1"],
    ),
    (
        "dup-addresses",
        {"nodes": {"list": [{"name": "a", "address": "10.0.0.5"}, {"name": "b", "address": "10.0.0.5"}]}},
        ["ha-lb:nodes.list[1].address", "10.0.0.5 is also the address of node 1"],
    ),
    (
        "dup-macs",
        {
            "nodes": {
                "list": [
                    {"name": "a", "address": "10.0.0.5", "mac": "52:54:00:00:00:01"},
                    {"name": "b", "address": "10.0.0.6", "mac": "52:54:00:00:00:01"},
                ]
            }
        },
        ["ha-lb:nodes.list[1].mac", "also the mac of node 1"],
    ),
    (
        "bad-mac",
        {"nodes": {"list": [{"name": "a", "address": "10.0.0.5", "mac": "zz"}, {"name": "b", "address": "10.0.0.6"}]}},
        ["ha-lb:nodes.list[0].mac", "not a MAC"],
    ),
    (
        "node-outside",
        {"nodes": {"list": [{"name": "a", "address": "10.9.0.5"}, {"name": "b", "address": "10.0.0.6"}]}},
        ["ha-lb:nodes.list[0].address", "outside network.cidr"],
    ),
    (
        "node-on-gateway",
        {"nodes": {"list": [{"name": "a", "address": "10.0.0.1"}, {"name": "b", "address": "10.0.0.6"}]}},
        ["ha-lb:nodes.list[0].address", "gateway"],
    ),
    ("bad-hostname", {"nodes": {"namePrefix": "LB_"}}, ["ha-lb:nodes.namePrefix", "not a host name prefix"]),
    ("bad-cidr", {"network": {"cidr": "10.0.0.1/24"}}, ["ha-lb:network.cidr", "network address with its prefix"]),
    ("gateway-outside", {"network": {"gateway": "10.1.0.1"}}, ["ha-lb:network.gateway", "outside"]),
    ("bad-domain", {"network": {"domain": "Bad_Domain"}}, ["ha-lb:network.domain", "not a DNS domain"]),
    ("unknown-key", {"cluster": {"tokenMS": 1000}}, ["ha-lb:cluster.tokenMS", "unknown key"]),
    ("unknown-top-key", {"vips": {}}, ["ha-lb:vips", "unknown key"]),
    ("bad-placement", {"cluster": {"placement": "anywhere"}}, ["ha-lb:cluster.placement", "with-vip"]),
    (
        "bad-duration",
        {"cluster": {"vipMonitor": {"interval": "ten", "timeout": "20s"}}},
        ["ha-lb:cluster.vipMonitor.interval"],
    ),
    (
        "ipmi-without-addresses",
        {"cluster": {"fencing": {"agent": "fence_ipmilan"}}},
        ["ha-lb:cluster.fencing.ipmi", "required with agent fence_ipmilan"],
    ),
    (
        "ipmi-unknown-node",
        {"cluster": {"fencing": {"agent": "fence_ipmilan", "ipmi": {"addresses": IPMI | {"zz": "10.0.9.3"}}}}},
        ["ha-lb:cluster.fencing.ipmi.addresses.zz", "not a node"],
    ),
    (
        "ipmi-node-missing",
        {"cluster": {"fencing": {"agent": "fence_ipmilan", "ipmi": {"addresses": {"lb1": "10.0.9.1"}}}}},
        ["ha-lb:cluster.fencing.ipmi.addresses", "no BMC address for node lb2"],
    ),
    (
        "ipmi-on-a-node-address",
        {"cluster": {"fencing": {"agent": "fence_ipmilan", "ipmi": {"addresses": {**IPMI, "lb2": "10.0.0.11"}}}}},
        ["ha-lb:cluster.fencing.ipmi.addresses.lb2", "address of its own"],
    ),
    (
        "ipmi-with-virsh",
        {"cluster": {"fencing": {"ipmi": {"addresses": IPMI}}}},
        ["ha-lb:cluster.fencing.ipmi", "only with agent fence_ipmilan"],
    ),
    (
        "virsh-on-a-bridge-needs-the-hypervisor",
        {"libvirt": {"network": {"bridge": "br0"}}},
        ["ha-lb:cluster.fencing.virsh.address", "not the hypervisor"],
    ),
    (
        "unknown-agent",
        {"cluster": {"fencing": {"agent": "fence_foo"}}},
        ["ha-lb:cluster.fencing.agent", "fence_virsh"],
    ),
    (
        "nat-on-two-hosts",
        {
            "libvirt": {"network": {"create": True}},
            "nodes": {
                "list": [
                    {"name": "a", "address": "10.0.0.5", "hostUri": "qemu+ssh://h1/system"},
                    {"name": "b", "address": "10.0.0.6", "hostUri": "qemu+ssh://h2/system"},
                ]
            },
        },
        ["ha-lb:libvirt.network.create", "bridge"],
    ),
    (
        "network-two-ways",
        {"libvirt": {"network": {"name": "default", "bridge": "br0"}}},
        ["ha-lb:libvirt.network", "not several"],
    ),
    ("bad-port", {"haproxy": {"stats": {"port": 70000}}}, ["ha-lb:haproxy.stats.port", "65535"]),
    (
        "frontend-on-stats-port",
        {"haproxy": {"frontends": [{"name": "web", "port": 32700, "backend": "kubernetes-master-nodes"}]}},
        ["ha-lb:haproxy.frontends[0].port", "already taken by haproxy.stats.port"],
    ),
    (
        "two-frontends-one-port",
        {
            "haproxy": {
                "frontends": [
                    {"name": "a", "port": 80, "backend": "kubernetes-master-nodes"},
                    {"name": "b", "port": 80, "backend": "kubernetes-master-nodes"},
                ]
            }
        },
        ["ha-lb:haproxy.frontends[1].port", "already taken"],
    ),
    (
        "unknown-backend",
        {"haproxy": {"frontends": [{"name": "a", "port": 80, "backend": "nope"}]}},
        ["ha-lb:haproxy.frontends[0].backend", "no backend named"],
    ),
    (
        "backend-no-servers",
        {"haproxy": {"backends": [{"name": "kubernetes-master-nodes", "servers": []}]}},
        ["ha-lb:haproxy.backends[0].servers", "no servers"],
    ),
    (
        "server-no-port",
        {"haproxy": {"backends": [{"name": "kubernetes-master-nodes", "servers": servers("web1")}]}},
        ["servers[0].address", "no port"],
    ),
    (
        "server-bad-port",
        {"haproxy": {"backends": [{"name": "kubernetes-master-nodes", "servers": servers("web1:0")}]}},
        ["servers[0].address", "1-65535"],
    ),
    (
        "mode-mismatch",
        {
            "haproxy": {
                "frontends": [{"name": "web", "port": 80, "mode": "http", "backend": "kubernetes-master-nodes"}],
            }
        },
        ["ha-lb:haproxy.frontends[0].mode", "make them match"],
    ),
    (
        "bad-authorized-key",
        {"ssh": {"authorizedKeys": ["not a key"]}},
        ["ha-lb:ssh.authorizedKeys[0]", "OpenSSH public key"],
    ),
    ("bad-ca-key", {"ssh": {"caPublicKey": "nope"}}, ["ha-lb:ssh.caPublicKey", "OpenSSH public key"]),
    (
        "two-backends-one-name",
        {
            "haproxy": {
                "backends": [
                    {"name": "kubernetes-master-nodes", "servers": servers("a:1")},
                    {"name": "kubernetes-master-nodes", "servers": servers("b:1")},
                ]
            }
        },
        ["ha-lb:haproxy.backends[1].name", "taken by backends[0]"],
    ),
    (
        "frontend-named-stats",
        {"haproxy": {"frontends": [{"name": "stats", "port": 80, "backend": "kubernetes-master-nodes"}]}},
        ["ha-lb:haproxy.frontends[0].name", "stats page"],
    ),
    (
        "bad-interface",
        {"network": {"interface": "a very long interface name"}},
        ["ha-lb:network.interface", "interface name"],
    ),
]


@pytest.mark.parametrize("patch,expected", [(p, e) for _, p, e in BAD], ids=[c for c, _, _ in BAD])
def test_bad_input_is_refused_with_its_key_and_fix(patch: dict[str, Any], expected: list[str]) -> None:
    raw = with_(patch)
    raw = {k: v for k, v in raw.items() if v is not None}
    with pytest.raises(SettingsError) as err:
        load_settings(raw)
    lines = err.value.problems
    assert any(all(text in line for text in expected) for line in lines), lines


def test_every_problem_is_reported_at_once() -> None:
    raw = with_(
        {
            "vip": {"address": "10.0.0.11"},
            "haproxy": {"frontends": [{"name": "a", "port": 32700, "backend": "nope"}]},
            "cluster": {"fencing": {"agent": "fence_ipmilan"}},
        }
    )
    with pytest.raises(SettingsError) as err:
        load_settings(raw)
    text = str(err.value)
    for key in (
        "ha-lb:vip.address",
        "ha-lb:haproxy.frontends[0].port",
        "ha-lb:haproxy.frontends[0].backend",
        "ha-lb:cluster.fencing.ipmi",
    ):
        assert key in text


def test_unknown_config_keys_of_the_namespace_are_named() -> None:
    assert check_unknown_keys(["vip", "haclusterPassword"]) == []
    (problem,) = check_unknown_keys(["vip", "nodez"])
    assert problem.startswith("ha-lb:nodez: unknown key")


# Every text rule of the model (a FullMatch), with a value it takes and how to set it: each must refuse that value
# with a trailing newline (`$` would have let it through). The table must list every rule the model has.
def _nodes_list(**first: Any) -> dict[str, Any]:
    return {"nodes": {"list": [{"name": "a", "address": "10.0.0.5", **first}, {"name": "b", "address": "10.0.0.6"}]}}


def _virsh(**virsh: Any) -> dict[str, Any]:
    return {"cluster": {"fencing": {"virsh": virsh}}}


def _ipmi(**ipmi: Any) -> dict[str, Any]:
    return {"cluster": {"fencing": {"agent": "fence_ipmilan", "ipmi": {"addresses": IPMI, **ipmi}}}}


def _backend(**backend: Any) -> dict[str, Any]:
    return {"haproxy": {"backends": [{"name": "kubernetes-master-nodes", "servers": servers("a:1"), **backend}]}}


def _quorum_device(**field: str) -> dict[str, Any]:
    return {"cluster": {"quorumDevice": {"address": "10.0.0.50", **field}}}


TEXT_RULES: dict[str, tuple[str, Any, str]] = {
    # "Model.alias": (valid value, patch for a value, the key a refusal names)
    "LibvirtNetwork.name": ("default", lambda v: {"libvirt": {"network": {"name": v}}}, "libvirt.network.name"),
    "LibvirtNetwork.bridge": (
        "br0",
        lambda v: {"libvirt": {"network": {"name": None, "bridge": v}}, **_virsh(address="10.0.0.1")},
        "libvirt.network.bridge",
    ),
    "LibvirtSettings.uri": ("qemu:///system", lambda v: {"libvirt": {"uri": v}}, "libvirt.uri"),
    "LibvirtSettings.pool": ("default", lambda v: {"libvirt": {"pool": v}}, "libvirt.pool"),
    "LibvirtSettings.baseImage": ("/var/lib/img.qcow2", lambda v: {"libvirt": {"baseImage": v}}, "libvirt.baseImage"),
    "NodeSpec.name": ("a", lambda v: _nodes_list(name=v), "nodes.list[0].name"),
    "NodeSpec.mac": ("52:54:00:00:00:01", lambda v: _nodes_list(mac=v), "nodes.list[0].mac"),
    "NodeSpec.hostUri": ("qemu+ssh://root@h1/system", lambda v: _nodes_list(hostUri=v), "nodes.list[0].hostUri"),
    "QuorumDeviceSettings.name": ("arbiter", lambda v: _quorum_device(name=v), "cluster.quorumDevice.name"),
    "QuorumDeviceSettings.hostUri": (
        "qemu+ssh://root@h3/system",
        lambda v: _quorum_device(hostUri=v),
        "cluster.quorumDevice.hostUri",
    ),
    "NodesSettings.namePrefix": ("lb-", lambda v: {"nodes": {"namePrefix": v}}, "nodes.namePrefix"),
    "NetworkSettings.interface": ("ens3", lambda v: {"network": {"interface": v}}, "network.interface"),
    "NetworkSettings.domain": ("lb.internal", lambda v: {"network": {"domain": v}}, "network.domain"),
    "VipSettings.nic": ("eth1", lambda v: {"vip": {"nic": v}}, "vip.nic"),
    "MonitorSettings.interval": (
        "10s",
        lambda v: {"cluster": {"vipMonitor": {"interval": v, "timeout": "20s"}}},
        "cluster.vipMonitor.interval",
    ),
    "MonitorSettings.timeout": (
        "20s",
        lambda v: {"cluster": {"haproxyMonitor": {"interval": "5s", "timeout": v}}},
        "cluster.haproxyMonitor.timeout",
    ),
    "VirshFencing.user": ("root", lambda v: _virsh(user=v), "cluster.fencing.virsh.user"),
    "VirshFencing.address": ("kvm1.example", lambda v: _virsh(address=v), "cluster.fencing.virsh.address"),
    "FencingSettings.priorityDelay": (
        "5s",
        lambda v: {"cluster": {"fencing": {"priorityDelay": v}}},
        "cluster.fencing.priorityDelay",
    ),
    "FencingSettings.failureTimeout": (
        "2min",
        lambda v: {"cluster": {"fencing": {"failureTimeout": v}}},
        "cluster.fencing.failureTimeout",
    ),
    "IpmiFencing.user": ("ADMIN", lambda v: _ipmi(user=v), "cluster.fencing.ipmi.user"),
    "IpmiFencing.addresses": (
        "lb1",
        lambda v: _ipmi(addresses={v: "10.0.9.1", "lb2": "10.0.9.2"}),
        "cluster.fencing.ipmi.addresses",
    ),
    "ClusterSettings.name": ("ha-lb", lambda v: {"cluster": {"name": v}}, "cluster.name"),
    "ClusterSettings.dcDeadtime": ("5s", lambda v: {"cluster": {"dcDeadtime": v}}, "cluster.dcDeadtime"),
    "ClusterSettings.transitionDelay": (
        "50ms",
        lambda v: {"cluster": {"transitionDelay": v}},
        "cluster.transitionDelay",
    ),
    "ClusterSettings.recheckInterval": (
        "2min",
        lambda v: {"cluster": {"recheckInterval": v}},
        "cluster.recheckInterval",
    ),
    "ClusterSettings.failureTimeout": ("10min", lambda v: {"cluster": {"failureTimeout": v}}, "cluster.failureTimeout"),
    "SshSettings.user": ("debian", lambda v: {"ssh": {"user": v}}, "ssh.user"),
    "SshSettings.authorizedKeys": (
        "ssh-ed25519 AAAAC3Nza x@y",
        lambda v: {"ssh": {"authorizedKeys": [v]}},
        "ssh.authorizedKeys[0]",
    ),
    "SshSettings.caPublicKey": ("ssh-ed25519 AAAAC3Nza ca", lambda v: {"ssh": {"caPublicKey": v}}, "ssh.caPublicKey"),
    "Server.name": (
        "s0",
        lambda v: _backend(servers=[{"name": v, "address": "a:1"}]),
        "haproxy.backends[0].servers[0].name",
    ),
    "Server.options": (
        "check inter 2s",
        lambda v: _backend(servers=[{"name": "s", "address": "a:1", "options": v}]),
        "haproxy.backends[0].servers[0].options",
    ),
    "Backend.name": (
        "kubernetes-master-nodes",
        lambda v: {
            "haproxy": {
                "backends": [{"name": v, "servers": servers("a:1")}],
                "frontends": [{"name": "f", "port": 80, "backend": v.strip()}],
            }
        },
        "haproxy.backends[0].name",
    ),
    "Backend.checkPath": (
        "/healthz",
        lambda v: {
            "haproxy": {
                "frontends": [{"name": "f", "port": 80, "mode": "http", "backend": "b"}],
                "backends": [{"name": "b", "mode": "http", "checkPath": v, "servers": servers("a:1")}],
            }
        },
        "haproxy.backends[0].checkPath",
    ),
    "Frontend.name": (
        "web",
        lambda v: {"haproxy": {"frontends": [{"name": v, "port": 80, "backend": "kubernetes-master-nodes"}]}},
        "haproxy.frontends[0].name",
    ),
    "Frontend.backend": (
        "kubernetes-master-nodes",
        lambda v: {"haproxy": {"frontends": [{"name": "f", "port": 80, "backend": v}]}},
        "haproxy.frontends[0].backend",
    ),
    "StatsSettings.user": ("admin", lambda v: {"haproxy": {"stats": {"user": v}}}, "haproxy.stats.user"),
    "StatsSettings.uri": ("/stats", lambda v: {"haproxy": {"stats": {"uri": v}}}, "haproxy.stats.uri"),
    "StatsSettings.refresh": ("10s", lambda v: {"haproxy": {"stats": {"refresh": v}}}, "haproxy.stats.refresh"),
    "TimeoutSettings.connect": ("5s", lambda v: {"haproxy": {"timeouts": {"connect": v}}}, "haproxy.timeouts.connect"),
    "TimeoutSettings.client": ("50s", lambda v: {"haproxy": {"timeouts": {"client": v}}}, "haproxy.timeouts.client"),
    "TimeoutSettings.server": ("50s", lambda v: {"haproxy": {"timeouts": {"server": v}}}, "haproxy.timeouts.server"),
    "TimeoutSettings.check": ("5s", lambda v: {"haproxy": {"timeouts": {"check": v}}}, "haproxy.timeouts.check"),
    "CloudInitSettings.timezone": ("Europe/Berlin", lambda v: {"cloudInit": {"timezone": v}}, "cloudInit.timezone"),
    "CloudInitSettings.locale": ("en_US.UTF-8", lambda v: {"cloudInit": {"locale": v}}, "cloudInit.locale"),
    "CloudInitSettings.extraPackages": (
        "fence-agents",
        lambda v: {"cloudInit": {"extraPackages": [v]}},
        "cloudInit.extraPackages[0]",
    ),
    # Text checked outside the model: server addresses (host and port).
    "server address": (
        "web1.example:8080",
        lambda v: _backend(servers=[{"name": "s", "address": v}]),
        "haproxy.backends[0].servers[0].address",
    ),
}


def _full_match_fields() -> set[str]:
    """Every `Model.alias` whose type carries a FullMatch rule, anywhere in the settings model."""
    found: set[str] = set()
    models: list[type[BaseModel]] = [Settings]
    seen: set[type[BaseModel]] = set()

    def walk(annotation: Any, where: str) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            models.append(annotation)
        for arg in get_args(annotation):
            if isinstance(arg, FullMatch):
                found.add(where)
            else:
                walk(arg, where)

    while models:
        model = models.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            where = f"{model.__name__}.{field.alias or name}"
            if any(isinstance(m, FullMatch) for m in field.metadata):
                found.add(where)
            walk(field.annotation, where)
    return found


def test_the_trailing_newline_table_lists_every_text_rule_of_the_model() -> None:
    assert _full_match_fields() <= set(TEXT_RULES), _full_match_fields() - set(TEXT_RULES)


@pytest.mark.parametrize("rule", sorted(TEXT_RULES))
def test_every_text_rule_takes_its_value_and_refuses_it_with_a_trailing_newline(rule: str) -> None:
    valid, patch_for, key = TEXT_RULES[rule]
    load_settings(with_(patch_for(valid)))
    for bad in (valid + "\n", valid + "\r\n", "\n" + valid):
        with pytest.raises(SettingsError) as err:
            load_settings(with_(patch_for(bad)))
        assert any(line.startswith(f"ha-lb:{key}") for line in err.value.problems), (bad, err.value.problems)
        assert "pattern" not in str(err.value) and "[a-z" not in str(err.value).lower()


@pytest.mark.parametrize(
    "uri",
    [
        "qemu:///system",
        "qemu:///session",
        "qemu+unix:///system",
        "qemu+ssh://root@h1/system",
        "qemu+ssh://h1.example.org/system?keyfile=/root/.ssh/id_ed25519&no_verify=1",
        "qemu+tls://h1/system",
        "qemu+tcp://10.0.0.2/session",
    ],
)
def test_libvirt_uris_the_provider_opens_are_taken(uri: str) -> None:
    # A session daemon is one fence_virsh (virsh as root) cannot see: such stacks fence another way.
    fencing = {"fencing": {"agent": "fence_xvm"}} if uri.endswith("/session") else {}
    assert load_settings(with_({"libvirt": {"uri": uri}, "cluster": fencing})).libvirt.uri == uri


def test_fence_virsh_refuses_a_session_daemon_and_fence_xvm_several_hypervisors() -> None:
    with pytest.raises(SettingsError, match=r"cluster\.fencing\.agent: fence_virsh runs virsh as root"):
        load_settings(with_({"libvirt": {"uri": "qemu:///session"}}))
    two_hosts = _nodes_list(hostUri="qemu+ssh://root@h1/system") | {"cluster": {"fencing": {"agent": "fence_xvm"}}}
    with pytest.raises(SettingsError, match=r"cluster\.fencing\.agent: fence_xvm through fence_virtd"):
        load_settings(with_(two_hosts))


@pytest.mark.parametrize(
    "uri",
    ["qemu+ssh://root@h1:2222/system", "qemu+tcp://h1:16509/system", "qemu+ssh://h1:/system"],
)
def test_a_libvirt_uri_with_a_port_is_refused_with_the_reason_and_the_way_around(uri: str) -> None:
    for patch, key in (
        ({"libvirt": {"uri": uri}}, "ha-lb:libvirt.uri"),
        (_nodes_list(hostUri=uri), "ha-lb:nodes.list[0].hostUri"),
    ):
        with pytest.raises(SettingsError) as err:
            load_settings(with_(patch))
        (problem,) = err.value.problems
        assert problem.startswith(f"{key}: ") and "has a port" in problem
        assert "terraform-provider-libvirt 0.8.1" in problem and "port 22" in problem


@pytest.mark.parametrize(
    "uri", ["qemu+ssh:///system", "qemu://h1/", "qemu:///root", "lxc:///system", "qemu+libssh2://h/system", "http://h"]
)
def test_a_libvirt_uri_of_another_shape_is_refused(uri: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(with_({"libvirt": {"uri": uri}}))
    assert err.value.problems[0].startswith("ha-lb:libvirt.uri: ") and "qemu+ssh://user@host/system" in str(err.value)


def test_a_prefix_ending_in_a_dash_makes_valid_names() -> None:
    assert [n.name for n in load_settings(with_({"nodes": {"namePrefix": "lb-"}})).node_list] == ["lb-1", "lb-2"]


def test_a_prefix_that_makes_names_longer_than_63_characters_is_named_with_the_longest_name() -> None:
    prefix = "n" * 62
    assert len(load_settings(with_({"nodes": {"namePrefix": prefix, "count": 9}})).node_list) == 9
    with pytest.raises(SettingsError) as err:
        load_settings(with_({"nodes": {"namePrefix": prefix, "count": 10}}))
    assert err.value.problems == [
        f"ha-lb:nodes.namePrefix: makes node names like '{prefix}10' (64 characters), but a host name has at most 63: "
        "shorten the prefix to 61 characters or fewer"
    ]


@pytest.mark.parametrize("netmask,ok", [(24, True), (28, True), (32, True), (23, False), (8, False)])
def test_the_vip_netmask_may_be_narrower_than_the_network_but_not_wider(netmask: int, ok: bool) -> None:
    raw = with_({"vip": {"netmask": netmask}})
    if ok:
        assert load_settings(raw).vip_prefix == netmask
        return
    with pytest.raises(SettingsError) as err:
        load_settings(raw)
    (problem,) = err.value.problems
    assert (
        problem.startswith("ha-lb:vip.netmask: ") and "wider than network.cidr" in problem and "24 or more" in problem
    )


@pytest.mark.parametrize("zero", ["0", "0s", "0ms", "00min"])
@pytest.mark.parametrize("field", ["interval", "timeout"])
def test_a_monitor_of_zero_is_refused(zero: str, field: str) -> None:
    monitor = {"interval": "10s", "timeout": "20s", field: zero}
    with pytest.raises(SettingsError) as err:
        load_settings(with_({"cluster": {"vipMonitor": monitor}}))
    (problem,) = err.value.problems
    assert problem.startswith(f"ha-lb:cluster.vipMonitor.{field}: ") and "above zero" in problem


def test_ssh_public_key_is_gone_and_refused_as_unknown() -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(with_({"ssh": {"publicKey": "ssh-ed25519 AAAAC3Nza x"}}))
    assert err.value.problems == [
        "ha-lb:ssh.publicKey: unknown key: remove it or check its spelling against the README's config reference"
    ]


GOOD_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nQUJDRA==\n-----END OPENSSH PRIVATE KEY-----\n"
)
GOOD_SECRETS = {"haclusterPassword": "Correct horse 9!", "statsPassword": "Stats-Pw_0k", "sshPrivateKey": GOOD_KEY}


def test_good_secrets_pass() -> None:
    assert check_secrets(GOOD_SECRETS) == []
    assert check_secrets({"sshPrivateKey": GOOD_KEY.rstrip("\n")}) == []
    assert check_secrets({"sshPrivateKey": GOOD_KEY.replace("OPENSSH", "EC")}) == []
    assert check_secrets({}) == []


BAD_SECRETS = [
    ("haclusterPassword", ""),
    ("haclusterPassword", "Sh0rt!"),
    ("haclusterPassword", "x" * 129),
    ("haclusterPassword", "Hacluster-Pw1\n"),
    ("haclusterPassword", "Hacluster-Pw1\nroot:owned"),
    ("haclusterPassword", "Hacluster\rPw1"),
    ("haclusterPassword", "Hacluster\tPw1"),
    ("haclusterPassword", "Hacluster\x00Pw1"),
    ("haclusterPassword", "Häcluster-Pw1"),
    ("statsPassword", ""),
    ("statsPassword", "Stats-Pw_0k\n"),
    ("statsPassword", "Stats-Pw\n0k"),
    ("statsPassword", "Stats Pw 0k"),
    ("statsPassword", "Stats#Pw$0k"),
    ("sshPrivateKey", ""),
    ("sshPrivateKey", "not a key at all"),
    ("sshPrivateKey", GOOD_KEY + "root:x:0:0\n"),
    ("sshPrivateKey", GOOD_KEY.replace("\n", "\r\n")),
    ("sshPrivateKey", GOOD_KEY.replace("QUJDRA==\n", "QUJDRA==\n\n")),
    ("sshPrivateKey", GOOD_KEY.replace("QUJDRA==", "QUJD RA==")),
    ("sshPrivateKey", GOOD_KEY.replace("END OPENSSH", "END RSA")),
    ("sshPrivateKey", "\n" + GOOD_KEY),
    ("sshPrivateKey", GOOD_KEY + "\n"),
    ("sshPrivateKey", "-----BEGIN OPENSSH PRIVATE KEY-----\n-----END OPENSSH PRIVATE KEY-----\n"),
]


@pytest.mark.parametrize("key,value", BAD_SECRETS, ids=[f"{k}-{i}" for i, (k, _) in enumerate(BAD_SECRETS)])
def test_bad_secrets_are_refused_naming_the_key_and_never_the_value(key: str, value: str) -> None:
    (problem,) = check_secrets({**GOOD_SECRETS, key: value})
    assert problem.startswith(f"ha-lb:{key}: ") and "pulumi config set --secret" in problem
    assert not value or value.strip() not in problem


def test_a_quorum_device_is_one_more_vm_beside_the_nodes() -> None:
    s = load_settings(with_({"cluster": {"quorumDevice": {"address": "10.0.0.50"}}}))
    assert s.arbiter is not None and [v.name for v in s.vms] == ["lb1", "lb2", "qnetd"]
    assert (s.arbiter.address, s.arbiter.host_uri, s.arbiter.memory_mib) == (
        ipaddress.IPv4Address("10.0.0.50"),
        "qemu:///system",
        512,
    )
    assert s.arbiter.mac not in {n.mac for n in s.node_list}
    assert load_settings(BASE).arbiter is None and len(load_settings(BASE).vms) == 2


@pytest.mark.parametrize(
    ("quorum_device", "extra", "expected"),
    [
        ({"address": "10.0.0.11"}, {}, "cluster.quorumDevice.address: 10.0.0.11 is also the address of node lb1"),
        ({"address": "10.0.0.100"}, {}, "cluster.quorumDevice.address: 10.0.0.100 is the VIP"),
        ({"address": "10.9.0.50"}, {}, "cluster.quorumDevice.address: 10.9.0.50 is outside network.cidr"),
        ({"address": "10.0.0.50", "name": "lb2"}, {}, "cluster.quorumDevice.name: lb2 is also a node's name"),
        ({"address": "10.0.0.50", "algorithm": "2nodelms"}, {}, "cluster.quorumDevice.algorithm"),
        (
            {"address": "10.0.0.50", "hostUri": "qemu+ssh://root@kvm2/system"},
            {"libvirt": {"network": {"create": True}}},
            "cluster.quorumDevice.hostUri: a created NAT network lives on the nodes' hypervisor",
        ),
    ],
)
def test_bad_quorum_device_settings_are_refused_naming_the_key(
    quorum_device: dict[str, Any], extra: dict[str, Any], expected: str
) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(with_({"cluster": {"quorumDevice": quorum_device}, **extra}))
    assert expected in str(err.value)


def test_ffsplit_with_an_odd_node_count_is_warned_about() -> None:
    def warned(nodes: int, algorithm: str) -> bool:
        raw = with_(
            {"nodes": {"count": nodes}, "cluster": {"quorumDevice": {"address": "10.0.0.50", "algorithm": algorithm}}}
        )
        return any("cluster.quorumDevice: ffsplit" in w for w in warnings_for(load_settings(raw)))

    assert warned(3, "ffsplit") and warned(5, "ffsplit")
    assert not warned(2, "ffsplit") and not warned(4, "ffsplit") and not warned(3, "lms")
