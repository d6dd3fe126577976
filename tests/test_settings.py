"""Settings: defaults, derived values, and a clear error for every kind of bad input."""

import copy
import ipaddress
from typing import Any

import pytest

from components.settings import SettingsError, check_unknown_keys, derive_mac, load_settings, warnings_for

BASE: dict[str, Any] = {"vip": {"address": "10.0.0.100"}, "network": {"cidr": "10.0.0.0/24"}}


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


def test_stonith_off_warns_and_is_on_with_devices() -> None:
    assert any("fencing is off" in w for w in warnings_for(load_settings(BASE)))
    fenced = load_settings(
        with_({"cluster": {"fencing": [{"name": "f1", "agent": "fence_xvm", "node": "lb1", "params": {"plug": "x"}}]}})
    )
    assert fenced.stonith_enabled and not any("fencing is off" in w for w in warnings_for(fenced))


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
    ("count-overflows", {"nodes": {"count": 300}}, ["ha-lb:nodes.count", "do not fit"]),
    (
        "dup-names",
        {"nodes": {"list": [{"name": "a", "address": "10.0.0.5"}, {"name": "a", "address": "10.0.0.6"}]}},
        ["ha-lb:nodes", "share the name a"],
    ),
    (
        "dup-addresses",
        {"nodes": {"list": [{"name": "a", "address": "10.0.0.5"}, {"name": "b", "address": "10.0.0.5"}]}},
        ["ha-lb:nodes", "share the address 10.0.0.5"],
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
        ["ha-lb:nodes", "share the mac"],
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
    ("bad-hostname", {"nodes": {"namePrefix": "LB_"}}, ["ha-lb:nodes.namePrefix", "pattern"]),
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
        "stonith-without-devices",
        {"cluster": {"stonith": True}},
        ["ha-lb:cluster.stonith", "no cluster.fencing devices"],
    ),
    (
        "fence-unknown-node",
        {"cluster": {"fencing": [{"name": "f", "agent": "fence_xvm", "node": "zz"}]}},
        ["ha-lb:cluster.fencing[0].node", "not a node"],
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
        ["ha-lb:haproxy.backends", "taken by 2 backends"],
    ),
    (
        "frontend-named-stats",
        {"haproxy": {"frontends": [{"name": "stats", "port": 80, "backend": "kubernetes-master-nodes"}]}},
        ["ha-lb:haproxy.frontends", "stats page"],
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
            "cluster": {"stonith": True},
        }
    )
    with pytest.raises(SettingsError) as err:
        load_settings(raw)
    text = str(err.value)
    for key in (
        "ha-lb:vip.address",
        "ha-lb:haproxy.frontends[0].port",
        "ha-lb:haproxy.frontends[0].backend",
        "ha-lb:cluster.stonith",
    ):
        assert key in text


def test_unknown_config_keys_of_the_namespace_are_named() -> None:
    assert check_unknown_keys(["vip", "haclusterPassword"]) == []
    (problem,) = check_unknown_keys(["vip", "nodez"])
    assert problem.startswith("ha-lb:nodez: unknown key")
