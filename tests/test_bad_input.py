"""Hostile and mistaken stack config, run through the real program: each is refused at preview, before any resource.

Every case runs `__main__.py` under the mock engine and checks that the run failed, that nothing at all was
registered (no VM, command, generated secret or provider: validation comes before `build_stack`), that a problem
line names the key, that no secret value shows, and that the message has words rather than a regular expression.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.harness import ProgramRun, run_program

BASE: dict[str, Any] = {"ha-lb:vip": {"address": "10.0.0.100"}, "ha-lb:network": {"cidr": "10.0.0.0/24"}}
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nQUJDRA==\n-----END OPENSSH PRIVATE KEY-----\n"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBadInputBadInputBadInput x@y"
# Fragments of regular expressions that a message in words never holds.
REGEX_TEXT = ("pattern", "[a-z", "[A-Z", "[0-9", "{0,", "(?:", "\\Z", "\\z", "]+", "]*", "]$", ")$", "^(", "^[")


@dataclass(frozen=True)
class Case:
    id: str
    config: dict[str, Any]
    """Keys of the `ha-lb:` namespace (without it) replacing BASE's."""
    key: str
    """The key a problem line starts with (without `ha-lb:`)."""
    secrets: tuple[str, ...] = field(default=())
    """Keys of `config` stored as secrets."""


def nodes(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"list": [{"name": f"n{i}", "address": f"10.0.0.{5 + i}", **e} for i, e in enumerate(entries)]}


def ipmi(**ipmi: Any) -> dict[str, Any]:
    addresses = {"lb1": "10.0.0.201", "lb2": "10.0.0.202"}
    return {"fencing": {"agent": "fence_ipmilan", "ipmi": {"addresses": addresses, **ipmi}}}


def backend(**server: Any) -> dict[str, Any]:
    return {"backends": [{"name": "kubernetes-master-nodes", "servers": [{"name": "s1", "address": "a:80", **server}]}]}


def frontend(**f: Any) -> dict[str, Any]:
    return {"frontends": [{"name": "web", "port": 80, "backend": "kubernetes-master-nodes", **f}]}


def secret(key: str, value: str, case_id: str) -> Case:
    return Case(case_id, {key: value}, key, (key,))


def monitor(interval: str = "10s", timeout: str = "20s") -> dict[str, str]:
    return {"interval": interval, "timeout": timeout}


VIP = {"address": "10.0.0.100"}

CASES = [
    # Secrets: control characters (a second line would reach chpasswd as another account's entry), bounds, empty.
    secret("haclusterPassword", "Hacluster-Pw1\n", "hacluster-trailing-newline"),
    secret("haclusterPassword", "Hacluster-Pw1\nroot:Pwned-Root-1", "hacluster-second-line-for-root"),
    secret("haclusterPassword", "Hacluster\rPw1", "hacluster-carriage-return"),
    secret("haclusterPassword", "Hacluster\tPw1", "hacluster-tab"),
    secret("haclusterPassword", "Hacluster\x00Pw1", "hacluster-nul"),
    secret("haclusterPassword", "", "hacluster-empty"),
    secret("haclusterPassword", "Sh0rt", "hacluster-under-8"),
    secret("haclusterPassword", "L0ng" * 33, "hacluster-over-128"),
    secret("statsPassword", "Stats-Pw_0k\n", "stats-trailing-newline"),
    secret("statsPassword", "Stats-Pw_0k\nuserlist", "stats-embedded-newline"),
    secret("statsPassword", "", "stats-empty"),
    secret("statsPassword", "Stats Pw 0k", "stats-spaces"),
    secret("statsPassword", "Stats#Pw$0k", "stats-hash-dollar"),
    secret("sshPrivateKey", "", "ssh-key-empty"),
    secret("sshPrivateKey", "NotAKeyAtAll", "ssh-key-not-pem"),
    secret("sshPrivateKey", KEY + "root:x:0:0:extra\n", "ssh-key-text-after-end"),
    secret("sshPrivateKey", KEY.replace("\n", "\r\n"), "ssh-key-crlf"),
    secret("sshPrivateKey", KEY.replace("QUJDRA==\n", "QUJDRA==\n\n"), "ssh-key-blank-line"),
    secret("fencePassword", "Bmc-Pw1\nroot:x", "fence-password-second-line"),
    secret("fencePassword", "", "fence-password-empty"),
    secret("fencePassword", "B" * 21, "fence-password-over-ipmi-20"),
    secret("fenceSshKey", "NotAKeyAtAll", "fence-ssh-key-not-pem"),
    secret("fenceSshKey", KEY + "extra\n", "fence-ssh-key-text-after-end"),
    secret("fenceXvmKey", "short", "fence-xvm-key-short"),
    secret("fenceXvmKey", "A" * 40 + "\n", "fence-xvm-key-newline"),
    Case("secret-in-plain-text", {"statsPassword": "Stats-Pw_0k"}, "statsPassword"),
    # Found in review: values pcs, glibc, HAProxy or cloud-init would take wrongly or fail on after the VMs exist.
    Case("cluster-name-an-option", {"cluster": {"name": "--help"}}, "cluster.name"),
    Case(
        "server-address-incomplete-ipv4",
        {"haproxy": backend(address="10.0.1:80")},
        "haproxy.backends[0].servers[0].address",
    ),
    Case("maxconn-beyond-memory", {"haproxy": {"maxconn": 1_000_000_000_000}}, "haproxy.maxconn"),
    Case("timezone-unknown", {"cloudInit": {"timezone": "Mars/Olympus"}}, "cloudInit.timezone"),
    # Valid but harmful.
    Case("vip-netmask-wider-than-network", {"vip": {**VIP, "netmask": 16}}, "vip.netmask"),
    Case("vip-monitor-interval-0", {"cluster": {"vipMonitor": monitor(interval="0")}}, "cluster.vipMonitor.interval"),
    Case("vip-monitor-interval-0s", {"cluster": {"vipMonitor": monitor(interval="0s")}}, "cluster.vipMonitor.interval"),
    Case("vip-monitor-interval-0ms", {"cluster": {"vipMonitor": monitor("0ms")}}, "cluster.vipMonitor.interval"),
    Case(
        "haproxy-monitor-timeout-0",
        {"cluster": {"haproxyMonitor": monitor(timeout="0")}},
        "cluster.haproxyMonitor.timeout",
    ),
    Case("haproxy-timeout-0", {"haproxy": {"timeouts": {"connect": "0"}}}, "haproxy.timeouts.connect"),
    Case("haproxy-timeout-in-min", {"haproxy": {"timeouts": {"client": "10min"}}}, "haproxy.timeouts.client"),
    Case("stats-refresh-0s", {"haproxy": {"stats": {"refresh": "0s"}}}, "haproxy.stats.refresh"),
    # Passed through unchecked before: libvirt URIs, package names.
    Case("libvirt-uri-with-port", {"libvirt": {"uri": "qemu+ssh://root@kvm1:2222/system"}}, "libvirt.uri"),
    Case(
        "host-uri-with-port", {"nodes": nodes({"hostUri": "qemu+ssh://kvm1:2222/system"}, {})}, "nodes.list[0].hostUri"
    ),
    Case("libvirt-uri-other-driver", {"libvirt": {"uri": "lxc:///system"}}, "libvirt.uri"),
    Case("libvirt-uri-ssh-without-host", {"libvirt": {"uri": "qemu+ssh:///system"}}, "libvirt.uri"),
    Case("libvirt-uri-bad-path", {"libvirt": {"uri": "qemu:///root"}}, "libvirt.uri"),
    Case("libvirt-uri-trailing-newline", {"libvirt": {"uri": "qemu:///system\n"}}, "libvirt.uri"),
    Case("package-upper-case", {"cloudInit": {"extraPackages": ["Vim"]}}, "cloudInit.extraPackages[0]"),
    Case("package-shell", {"cloudInit": {"extraPackages": ["vim", "vim; rm -rf /"]}}, "cloudInit.extraPackages[1]"),
    Case("package-trailing-newline", {"cloudInit": {"extraPackages": ["vim\n"]}}, "cloudInit.extraPackages[0]"),
    # Shapes: a bare value where an object or a list belongs.
    Case("vip-bare-string", {"vip": "10.0.0.1"}, "vip"),
    Case("nodes-bare-number", {"nodes": 3}, "nodes"),
    Case("nodes-a-list", {"nodes": ["lb1", "lb2"]}, "nodes"),
    Case("cluster-bare-word", {"cluster": "fast"}, "cluster"),
    Case("haproxy-bare-true", {"haproxy": True}, "haproxy"),
    Case("frontends-an-object", {"haproxy": {"frontends": {"name": "web"}}}, "haproxy.frontends"),
    Case("node-list-a-string", {"nodes": {"list": "lb1,lb2"}}, "nodes.list"),
    Case("dns-a-string", {"network": {"cidr": "10.0.0.0/24", "dns": "10.0.0.1"}}, "network.dns"),
    Case("authorized-keys-a-string", {"ssh": {"authorizedKeys": PUBLIC_KEY}}, "ssh.authorizedKeys"),
    Case("vip-monitor-a-string", {"cluster": {"vipMonitor": "10s"}}, "cluster.vipMonitor"),
    # Names of nodes.
    Case("name-prefix-makes-64-chars", {"nodes": {"namePrefix": "n" * 62, "count": 10}}, "nodes.namePrefix"),
    Case("name-prefix-upper-case", {"nodes": {"namePrefix": "LB"}}, "nodes.namePrefix"),
    Case("count-over-32", {"network": {"cidr": "10.0.0.0/8"}, "nodes": {"count": 10**9}}, "nodes.count"),
    Case(
        "node-list-over-32",
        {
            "network": {"cidr": "10.0.0.0/16"},
            "nodes": {"list": [{"name": f"n{i}", "address": f"10.0.1.{i + 1}"} for i in range(33)]},
        },
        "nodes.list",
    ),
    Case("name-prefix-trailing-newline", {"nodes": {"namePrefix": "lb\n"}}, "nodes.namePrefix"),
    Case("node-name-trailing-newline", {"nodes": nodes({"name": "a\n"}, {})}, "nodes.list[0].name"),
    Case("duplicate-node-names", {"nodes": nodes({"name": "a"}, {"name": "a"})}, "nodes.list[1].name"),
    Case(
        "duplicate-node-addresses",
        {"nodes": nodes({"address": "10.0.0.5"}, {"address": "10.0.0.5"})},
        "nodes.list[1].address",
    ),
    Case(
        "duplicate-node-macs",
        {"nodes": nodes({"mac": "52:54:00:00:00:01"}, {"mac": "52:54:00:00:00:01"})},
        "nodes.list[1].mac",
    ),
    Case("mac-trailing-newline", {"nodes": nodes({"mac": "52:54:00:00:00:01\n"}, {})}, "nodes.list[0].mac"),
    Case("mac-multicast", {"nodes": nodes({"mac": "01:54:00:00:00:01"}, {})}, "nodes.list[0].mac"),
    # Addresses, networks, ports.
    Case("vip-octet-256", {"vip": {"address": "10.0.0.256"}}, "vip.address"),
    Case("vip-trailing-newline", {"vip": {"address": "10.0.0.100\n"}}, "vip.address"),
    Case("vip-outside-network", {"vip": {"address": "10.0.1.100"}}, "vip.address"),
    Case("cidr-prefix-33", {"network": {"cidr": "10.0.0.0/33"}}, "network.cidr"),
    Case("cidr-host-bits-set", {"network": {"cidr": "10.0.0.1/24"}}, "network.cidr"),
    Case("gateway-outside", {"network": {"cidr": "10.0.0.0/24", "gateway": "10.0.1.1"}}, "network.gateway"),
    Case("gateway-broadcast", {"network": {"cidr": "10.0.0.0/24", "gateway": "10.0.0.255"}}, "network.gateway"),
    Case(
        "first-address-outside",
        {"network": {"cidr": "10.0.0.0/24", "firstAddress": "10.9.0.11"}},
        "network.firstAddress",
    ),
    Case("dns-three-octets", {"network": {"cidr": "10.0.0.0/24", "dns": ["8.8.8"]}}, "network.dns[0]"),
    Case("ssh-port-0", {"ssh": {"port": 0}}, "ssh.port"),
    Case("ssh-port-65536", {"ssh": {"port": 65536}}, "ssh.port"),
    Case("frontend-port-0", {"haproxy": frontend(port=0)}, "haproxy.frontends[0].port"),
    Case("stats-port-65536", {"haproxy": {"stats": {"port": 65536}}}, "haproxy.stats.port"),
    Case("server-port-0", {"haproxy": backend(address="web1:0")}, "haproxy.backends[0].servers[0].address"),
    Case(
        "duplicate-frontend-names",
        {"haproxy": {"frontends": [*frontend()["frontends"], *frontend(port=81)["frontends"]]}},
        "haproxy.frontends[1].name",
    ),
    Case(
        "duplicate-frontend-ports",
        {"haproxy": {"frontends": [*frontend()["frontends"], *frontend(name="web2")["frontends"]]}},
        "haproxy.frontends[1].port",
    ),
    # Unknown keys at every level.
    Case("unknown-top-level", {"vips": {"address": "10.0.0.100"}}, "vips"),
    Case("unknown-in-vip", {"vip": {**VIP, "adress": "10.0.0.101"}}, "vip.adress"),
    Case("unknown-in-node", {"nodes": nodes({"ip": "10.0.0.9"}, {})}, "nodes.list[0].ip"),
    Case(
        "unknown-in-monitor",
        {"cluster": {"vipMonitor": {**monitor(), "intervall": "5s"}}},
        "cluster.vipMonitor.intervall",
    ),
    Case("unknown-in-server", {"haproxy": backend(weight=10)}, "haproxy.backends[0].servers[0].weight"),
    Case("unknown-in-libvirt-network", {"libvirt": {"network": {"nam": "default"}}}, "libvirt.network.nam"),
    Case("unknown-in-cloud-init", {"cloudInit": {"packages": ["vim"]}}, "cloudInit.packages"),
    Case("unknown-in-stats", {"haproxy": {"stats": {"password": "Stats-Pw_0k"}}}, "haproxy.stats.password"),
    Case("unknown-in-fencing", {"cluster": {"fencing": {"agents": "fence_virsh"}}}, "cluster.fencing.agents"),
    Case("unknown-in-ipmi", {"cluster": ipmi(password="x")}, "cluster.fencing.ipmi.password"),
    Case("ssh-public-key-removed", {"ssh": {"publicKey": PUBLIC_KEY}}, "ssh.publicKey"),
    # Wrong types at every level.
    Case("count-a-word", {"nodes": {"count": "two"}}, "nodes.count"),
    Case("count-a-fraction", {"nodes": {"count": 2.5}}, "nodes.count"),
    Case("count-true", {"nodes": {"count": True}}, "nodes.count"),
    Case("stonith-maybe", {"cluster": {"stonith": "maybe"}}, "cluster.stonith"),
    Case("package-update-yes", {"cloudInit": {"packageUpdate": "yes"}}, "cloudInit.packageUpdate"),
    Case("maxconn-a-word", {"haproxy": {"maxconn": "many"}}, "haproxy.maxconn"),
    Case("netmask-text", {"vip": {**VIP, "netmask": "24"}}, "vip.netmask"),
    Case("ipmi-port-a-word", {"cluster": ipmi(port="623")}, "cluster.fencing.ipmi.port"),
    Case("fencing-a-list", {"cluster": {"fencing": [{"agent": "fence_xvm"}]}}, "cluster.fencing"),
    Case("server-check-a-word", {"haproxy": backend(check="on")}, "haproxy.backends[0].servers[0].check"),
    Case("placement-unknown", {"cluster": {"placement": "anywhere"}}, "cluster.placement"),
    # Line breaks and spaces in names and words that land in files and resource parameters.
    Case("interface-newline", {"network": {"cidr": "10.0.0.0/24", "interface": "eth0\n"}}, "network.interface"),
    Case("vip-nic-newline", {"vip": {**VIP, "nic": "eth0\n"}}, "vip.nic"),
    Case("domain-trailing-newline", {"network": {"cidr": "10.0.0.0/24", "domain": "lb.internal\n"}}, "network.domain"),
    Case("duration-with-space", {"cluster": {"dcDeadtime": "5 s"}}, "cluster.dcDeadtime"),
    # A bare number is seconds to Pacemaker: "50" would hold every recovery 50 s.
    Case("transition-delay-bare-seconds", {"cluster": {"transitionDelay": "50"}}, "cluster.transitionDelay"),
    Case("transition-delay-too-long", {"cluster": {"transitionDelay": "2s"}}, "cluster.transitionDelay"),
    Case("duration-trailing-newline", {"cluster": {"failureTimeout": "5s\n"}}, "cluster.failureTimeout"),
    Case("cluster-name-newline", {"cluster": {"name": "ha-lb\n"}}, "cluster.name"),
    Case("stats-uri-newline", {"haproxy": {"stats": {"uri": "/stats\n"}}}, "haproxy.stats.uri"),
    Case("stats-user-newline", {"haproxy": {"stats": {"user": "admin\n"}}}, "haproxy.stats.user"),
    Case(
        "server-options-newline",
        {"haproxy": backend(options="check\n  http-request deny")},
        "haproxy.backends[0].servers[0].options",
    ),
    Case("server-address-newline", {"haproxy": backend(address="web1:80\n")}, "haproxy.backends[0].servers[0].address"),
    Case("server-host-with-space", {"haproxy": backend(address="web 1:80")}, "haproxy.backends[0].servers[0].address"),
    Case("frontend-name-with-space", {"haproxy": frontend(name="my frontend")}, "haproxy.frontends[0].name"),
    Case(
        "backend-name-with-space",
        {"haproxy": {"backends": [{"name": "my backend", "servers": [{"name": "s", "address": "a:1"}]}]}},
        "haproxy.backends[0].name",
    ),
    Case(
        "check-path-newline",
        {"haproxy": {"backends": [{"name": "b", "mode": "http", "checkPath": "/healthz\n", "servers": []}]}},
        "haproxy.backends[0].checkPath",
    ),
    Case("ipmi-user-newline", {"cluster": ipmi(user="admin\nx")}, "cluster.fencing.ipmi.user"),
    Case(
        "ipmi-node-name-newline", {"cluster": ipmi(addresses={"lb1\n": "10.0.0.201"})}, "cluster.fencing.ipmi.addresses"
    ),
    Case("ipmi-bad-address", {"cluster": ipmi(addresses={"lb1": "10.0.0.300"})}, "cluster.fencing.ipmi.addresses.lb1"),
    Case(
        "virsh-address-newline",
        {"cluster": {"fencing": {"virsh": {"address": "kvm1\n"}}}},
        "cluster.fencing.virsh.address",
    ),
    Case("virsh-user-space", {"cluster": {"fencing": {"virsh": {"user": "the admin"}}}}, "cluster.fencing.virsh.user"),
    Case("fence-agent-newline", {"cluster": {"fencing": {"agent": "fence_xvm\n"}}}, "cluster.fencing.agent"),
    Case("fence-agent-made-up", {"cluster": {"fencing": {"agent": "fence_everything"}}}, "cluster.fencing.agent"),
    Case("priority-delay-word", {"cluster": {"fencing": {"priorityDelay": "soon"}}}, "cluster.fencing.priorityDelay"),
    Case("ipmi-without-password", {"cluster": ipmi()}, "fencePassword"),
    Case("ssh-user-newline", {"ssh": {"user": "debian\n"}}, "ssh.user"),
    Case("ssh-user-root-ish", {"ssh": {"user": "0day"}}, "ssh.user"),
    Case("authorized-key-newline", {"ssh": {"authorizedKeys": [PUBLIC_KEY + "\n"]}}, "ssh.authorizedKeys[0]"),
    Case(
        "authorized-key-two-lines",
        {"ssh": {"authorizedKeys": [PUBLIC_KEY + "\n" + PUBLIC_KEY]}},
        "ssh.authorizedKeys[0]",
    ),
    Case("ca-key-garbage", {"ssh": {"caPublicKey": "trust me"}}, "ssh.caPublicKey"),
    Case("timezone-newline", {"cloudInit": {"timezone": "UTC\n"}}, "cloudInit.timezone"),
    Case("locale-newline", {"cloudInit": {"locale": "C.UTF-8\n"}}, "cloudInit.locale"),
    Case("pool-newline", {"libvirt": {"pool": "default\n"}}, "libvirt.pool"),
    Case("base-image-two-lines", {"libvirt": {"baseImage": "/img.qcow2\n/other"}}, "libvirt.baseImage"),
    Case("bridge-newline", {"libvirt": {"network": {"bridge": "br0\n"}}}, "libvirt.network.bridge"),
]


def run(case: Case) -> ProgramRun:
    config = {**BASE, **{f"ha-lb:{k}": v for k, v in case.config.items()}}
    return run_program(config, secret_keys=[f"ha-lb:{k}" for k in case.secrets], preview=True)


def problem_lines(r: ProgramRun) -> list[str]:
    return [line.removeprefix("  - ") for line in str(r.error).splitlines() if line.startswith("  - ")]


def secret_fragments(case: Case) -> list[str]:
    """The secret values of a case and each line of them: none may show in a message."""
    values = [str(case.config[k]) for k in case.secrets]
    return [part for v in values for part in (v, *v.splitlines()) if len(part.strip()) >= 4]


def test_the_table_has_at_least_60_bad_inputs_with_unique_ids() -> None:
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_before_any_resource_naming_its_key(case: Case) -> None:
    r = run(case)
    assert r.error is not None, "the run should fail"
    # Not even a component: validation raises before build_stack declares anything.
    assert [x.type for x in r.registrations] == []
    lines = problem_lines(r)
    assert any(line.startswith(f"ha-lb:{case.key}") for line in lines), lines
    message = str(r.error)
    for fragment in secret_fragments(case):
        assert fragment not in message
    assert not [x for x in REGEX_TEXT if x in message], message


@pytest.mark.parametrize("key", ["haclusterPassword", "statsPassword"])
@pytest.mark.parametrize("where", ["trailing", "embedded", "leading"])
def test_a_password_with_a_newline_is_refused(key: str, where: str) -> None:
    value = {"trailing": "Good-Pass_123\n", "embedded": "Good-Pass\n_123", "leading": "\nGood-Pass_123"}[where]
    r = run(secret(key, value, "x"))
    assert r.error is not None and r.registrations == []
    (line,) = problem_lines(r)
    assert line.startswith(f"ha-lb:{key}: ") and "pulumi config set --secret" in line
    assert "Good-Pass" not in line


@pytest.mark.parametrize(
    "value",
    [KEY + "\n", KEY + "extra", KEY.replace("QUJD", "\nQUJD"), KEY.replace("QUJD", "QU JD"), "\n" + KEY],
    ids=["extra-blank-line-after", "text-after", "blank-line-inside", "space-inside", "leading-newline"],
)
def test_a_private_key_with_a_stray_newline_is_refused(value: str) -> None:
    r = run(secret("sshPrivateKey", value, "x"))
    assert r.error is not None and r.registrations == []
    (line,) = problem_lines(r)
    assert line.startswith("ha-lb:sshPrivateKey: ") and "b3BlbnNz" not in line and "QUJD" not in line


def test_a_well_formed_private_key_is_taken() -> None:
    config = {**BASE, "ha-lb:sshPrivateKey": KEY, "ha-lb:cluster": {"placement": "with-vip"}}
    r = run_program(config, secret_keys=["ha-lb:sshPrivateKey"])
    assert r.error is None, r.error


def test_a_bad_stats_password_is_caught_at_preview_not_inside_an_apply_after_the_vms() -> None:
    r = run(secret("statsPassword", "has space", "x"))
    assert r.registrations == [] and problem_lines(r)[0].startswith("ha-lb:statsPassword: ")
    assert not re.search(r"libvirt|Domain|Command", str(r.error))


def test_every_problem_of_a_config_is_listed_at_once() -> None:
    r = run(
        Case(
            "many",
            {"vip": "10.0.0.1", "nodes": 3, "haclusterPassword": "x\ny", "libvirt": {"uri": "qemu+ssh://h:22/system"}},
            "vip",
            ("haclusterPassword",),
        )
    )
    keys = {line.split(": ", 1)[0] for line in problem_lines(r)}
    assert keys == {"ha-lb:vip", "ha-lb:nodes", "ha-lb:haclusterPassword", "ha-lb:libvirt.uri"}
