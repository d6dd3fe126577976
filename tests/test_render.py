"""Rendered node files: valid YAML of the right shape, deterministic, and equal to the reviewed golden files."""

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.host_keys import HostKey
from components.render import (
    check_stats_password,
    node_packages,
    render_haproxy_cfg,
    render_meta_data,
    render_network_config,
    render_user_data,
)
from components.settings import Settings, load_settings
from tests.harness import stack_config

GOLDEN = Path(__file__).parent / "golden"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGoldenGoldenGoldenGoldenGoldenGoldenGold golden"
HOST_KEY = HostKey(
    "-----BEGIN OPENSSH PRIVATE KEY-----\nR29sZGVuLWhvc3Qta2V5\n-----END OPENSSH PRIVATE KEY-----\n",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostHostHostHostHostHostHostHostHostHostHost",
)


def settings_of(stack: Path) -> Settings:
    raw = {k.split(":", 1)[1]: v for k, v in stack_config(stack).items() if k.startswith("ha-lb:")}
    return load_settings({k: v for k, v in raw.items() if not k.endswith(("Password", "PrivateKey"))})


def rendered(s: Settings) -> dict[str, str]:
    node = s.first_node
    return {
        "user-data": render_user_data(s, node, KEY, HOST_KEY),
        "meta-data": render_meta_data(s, node),
        "network-config": render_network_config(s, node),
        "haproxy.cfg": render_haproxy_cfg(s, "golden-stats-pw"),
    }


def test_files_match_golden(example_stack: Path) -> None:
    """Set UPDATE_GOLDEN=1 to rewrite them after a reviewed change."""
    folder = GOLDEN / example_stack.stem.removeprefix("Pulumi.")
    for name, text in rendered(settings_of(example_stack)).items():
        path = folder / name
        if os.environ.get("UPDATE_GOLDEN"):
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        assert path.read_text() == text, f"{path} differs: review, then UPDATE_GOLDEN=1"


def test_rendering_is_deterministic(example_stack: Path) -> None:
    s = settings_of(example_stack)
    assert rendered(s) == rendered(settings_of(example_stack))


def test_user_data_shape(example_stack: Path) -> None:
    s = settings_of(example_stack)
    text = render_user_data(s, s.first_node, KEY, HOST_KEY)
    assert text.startswith("#cloud-config\n")
    doc: dict[str, Any] = yaml.safe_load(text)
    (user,) = doc["users"]
    assert user["name"] == s.ssh.user and KEY in user["ssh_authorized_keys"] and user["lock_passwd"] is True
    assert doc["ssh_pwauth"] is False and doc["manage_etc_hosts"] is False
    assert doc["hostname"] == s.first_node.name and doc["fqdn"] == s.first_node.fqdn
    assert set(node_packages(s)) <= set(doc["packages"])
    hosts = next(f for f in doc["write_files"] if f["path"] == "/etc/hosts")["content"]
    first, *others = s.node_list
    assert f"{first.address} {first.fqdn} {first.name}" in hosts
    # No other node: adding one must not change this node's seed, which would replace its VM.
    assert not [n for n in others if n.name in text or str(n.address) in text]
    # What the first boot does with them is tested by running it: tests/test_lab_first_boot.py.
    assert doc["bootcmd"] and doc["runcmd"]


def test_network_config_is_static_and_matched_by_mac(example_stack: Path) -> None:
    s = settings_of(example_stack)
    for n in s.node_list:
        doc = yaml.safe_load(render_network_config(s, n))
        (eth,) = doc["ethernets"].values()
        assert doc["version"] == 2 and eth["match"]["macaddress"] == n.mac
        assert eth["addresses"] == [f"{n.address}/{s.network.cidr.prefixlen}"]
        assert "dhcp4" not in eth


def test_ssh_ca_is_trusted_when_given() -> None:
    ca = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICaCaCaCaCaCaCaCaCaCaCaCaCaCaCaCaCaCaCaCaCa ca@example"
    s = load_settings({"vip": {"address": "192.168.122.100"}, "ssh": {"caPublicKey": ca}})
    doc = yaml.safe_load(render_user_data(s, s.first_node, KEY, HOST_KEY))
    files = {f["path"]: f["content"] for f in doc["write_files"]}
    assert files["/etc/ssh/ha-lb-user-ca.pub"].strip() == ca
    assert "TrustedUserCAKeys /etc/ssh/ha-lb-user-ca.pub" in files["/etc/ssh/sshd_config.d/50-ha-lb-user-ca.conf"]


def test_an_image_with_the_packages_installs_none_and_checks_them() -> None:
    s = load_settings({"vip": {"address": "192.168.122.100"}, "cloudInit": {"packagesInImage": True}})
    doc = yaml.safe_load(render_user_data(s, s.first_node, KEY, HOST_KEY))
    assert "packages" not in doc and doc["package_update"] is False, "no mirror needed at first boot"
    # The check is runcmd's last command (its exit status is the whole runcmd's) and names every package.
    check = doc["runcmd"][-1]
    assert check[:2] == ["sh", "-c"] and "dpkg-query" in check[2] and check[4:] == node_packages(s)
    plain = yaml.safe_load(
        render_user_data(load_settings({"vip": {"address": "192.168.122.100"}}), s.first_node, KEY, HOST_KEY)
    )
    assert plain["packages"] == node_packages(s) and len(plain["runcmd"]) == len(doc["runcmd"]) - 1


def test_haproxy_cfg_binds_frontends_and_stats_to_the_vip() -> None:
    s = load_settings({"vip": {"address": "192.168.122.100"}})
    cfg = render_haproxy_cfg(s, "s3cret-Stats")
    assert "bind 192.168.122.100:6443" in cfg and "bind 192.168.122.100:32700" in cfg
    assert "stats auth admin:s3cret-Stats" in cfg
    assert cfg.count("server kube-mast0") == 3


@pytest.mark.parametrize("bad", ["short", "has space in it", 'quote"quote', "hash#hash#", "dollar$dollar"])
def test_stats_password_that_haproxy_cannot_take_is_refused_without_showing_it(bad: str) -> None:
    with pytest.raises(ValueError) as err:
        check_stats_password(bad)
    assert "ha-lb:statsPassword" in str(err.value) and bad not in str(err.value)


def test_fully_qualified_backend_names_are_resolved_again_while_haproxy_runs_and_others_once() -> None:
    backend = {
        "name": "b",
        "servers": [
            {"name": n, "address": a} for n, a in (("f", "web1.example.com:80"), ("s", "web2:80"), ("i", "10.0.0.5:80"))
        ],
    }
    s = load_settings(
        {
            "vip": {"address": "10.0.0.100"},
            "network": {"cidr": "10.0.0.0/24"},
            "haproxy": {"frontends": [{"name": "fe", "port": 80, "backend": "b"}], "backends": [backend]},
        }
    )
    cfg = render_haproxy_cfg(s, "golden-stats-pw")
    servers = {line.split()[1]: line for line in cfg.splitlines() if line.strip().startswith("server ")}
    assert "resolvers node-dns" in servers["f"] and "resolvers" not in servers["s"] + servers["i"]
    # A failed lookup keeps the last address: DNS trouble must not take servers out of service.
    for status in ("nx", "timeout", "refused", "other"):
        assert f"hold {status} 1d" in cfg
    assert "default-server init-addr last,libc,none\n" in cfg
    short_only = load_settings({**{"vip": {"address": "10.0.0.100"}, "network": {"cidr": "10.0.0.0/24"}}})
    assert "resolvers" not in render_haproxy_cfg(short_only, "golden-stats-pw")
