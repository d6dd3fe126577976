"""First boot as user-data runs it: bootcmd (before the packages) and runcmd (after), on what a node may hold.

The commands themselves, as the template has them, run as root in a private mount namespace: tmpfs over
/etc/corosync, /usr/sbin and /var/lib (dpkg's database bound back in; this machine's files stay untouched), with a
systemctl that records its calls and answers as the case says. Debian's shipped corosync.conf is this machine's
own (scripts/setup installs corosync).
"""

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / "user-data.yaml.j2"
CONF = Path("/etc/corosync/corosync.conf")
CIB = Path("/var/lib/pacemaker/cib")
PCS_CONF = "totem {\n    version: 2\n    cluster_name: halab\n    transport: knet\n}\nnodelist {\n    node {\n        name: lab1\n        nodeid: 1\n    }\n}\n"


def section(key: str) -> list[Any]:
    """A top-level list of the template that holds no template syntax (so the text is what a node gets)."""
    lines = TEMPLATE.read_text().splitlines(keepends=True)
    start = lines.index(f"{key}:\n")
    end = next((i for i in range(start + 1, len(lines)) if lines[i][:1] not in (" ", "")), len(lines))
    text = "".join(lines[start:end])
    assert "{{" not in text and "{%" not in text
    items: list[Any] = yaml.safe_load(text)[key]
    return items


def shipped_conf_is_here() -> bool:
    if not CONF.exists() or not CIB.is_dir() or shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    listed = subprocess.run(["dpkg-query", "-W", "-f=${Conffiles}", "corosync"], capture_output=True, text=True)
    md5 = subprocess.run(["md5sum", str(CONF)], capture_output=True, text=True).stdout.split()[:1]
    return bool(md5) and f"{CONF} {md5[0]}" in listed.stdout


pytestmark = pytest.mark.skipif(not shipped_conf_is_here(), reason="needs root, unshare and Debian's corosync")


def first_boot(tmp_path: Path, *, conf: str | None, cib: bool, units: str, boots: int = 1) -> dict[str, Any]:
    """Run bootcmd (`boots` times, as every boot does) then runcmd; what systemctl was asked and what is left."""
    (tmp_path / "bin").mkdir()
    calls = tmp_path / "calls"
    verdict = {
        "enabled-active": "exit 0",  # as a postinst left them, policy-rc.d absent
        "enabled": 'case "$*" in *is-active*) exit 3;; esac; exit 0',  # installed under policy-rc.d
        "disabled": 'case "$*" in *pcsd*) exit 0;; *is-*) exit 1;; esac; exit 0',  # an image that has them off
    }[units]
    fake = tmp_path / "bin" / "systemctl"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n{verdict}\n')
    fake.chmod(0o755)
    shipped = tmp_path / "shipped.conf"
    shutil.copyfile(CONF, shipped)
    if conf is not None:
        (tmp_path / "node.conf").write_text(conf if conf != "shipped" else shipped.read_text())
    script = tmp_path / "runcmd.sh"
    ((runcmd,),) = [item[2:] for item in section("runcmd") if item[:2] == ["sh", "-c"]]
    script.write_text(runcmd)
    bootcmd = tmp_path / "bootcmd.sh"
    bootcmd.write_text("".join(_argv_line(item) + "\n" for item in section("bootcmd")))
    driver = f"""set -e
mkdir {tmp_path}/dpkg; mount --bind /var/lib/dpkg {tmp_path}/dpkg
for d in /etc/corosync /usr/sbin /var/lib; do mount -t tmpfs ha-lb-test "$d"; done
mkdir -p /var/lib/dpkg {CIB} /var/lib/cloud/instance/sem; mount --bind {tmp_path}/dpkg /var/lib/dpkg
if [ -e {tmp_path}/node.conf ]; then cp {tmp_path}/node.conf {CONF}; fi
if [ {int(cib)} = 1 ]; then echo '<cib/>' > {CIB}/cib.xml; echo sig > {CIB}/cib.xml.sig; echo x > {CIB}/cib-1.raw; fi
for i in $(seq {boots}); do sh {bootcmd}; if [ -e /usr/sbin/policy-rc.d ]; then
  /usr/sbin/policy-rc.d corosync start && echo "policy-rc.d exit 0" >> {tmp_path}/policy || echo "policy-rc.d exit $?" >> {tmp_path}/policy
  [ "$i" = {boots} ] || rm /usr/sbin/policy-rc.d; fi; done
PATH={tmp_path}/bin:/usr/bin:/bin sh -c "$(cat {script})"
for d in /etc/corosync {CIB} /usr/sbin; do echo "$d:" $(ls -A "$d"); done > {tmp_path}/left
"""
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", driver], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    made = [c for c in (calls.read_text().splitlines() if calls.exists() else []) if not c.startswith("-q is-")]
    policy = (tmp_path / "policy").read_text().splitlines() if (tmp_path / "policy").exists() else []
    left = dict(line.split(":", 1) for line in (tmp_path / "left").read_text().splitlines())
    return {"systemctl": made, "left": {d: names.split() for d, names in left.items()}, "policy-rc.d": policy}


def _argv_line(argv: list[str]) -> str:
    return " ".join("'" + a.replace("'", "'\"'\"'") + "'" for a in argv)


DISABLED = [f"disable --now {u}.service" for u in ("haproxy", "pacemaker", "corosync-qdevice", "corosync")]


def test_bootcmd_holds_services_once_per_instance(tmp_path: Path) -> None:
    # bootcmd runs at every boot; the policy is written at the instance's first only (a later boot removes nothing
    # runcmd would have to remove again).
    out = first_boot(tmp_path, conf=None, cib=False, units="disabled", boots=2)
    assert out["policy-rc.d"] == ["policy-rc.d exit 101"]


def test_a_postinst_cluster_is_cleared(tmp_path: Path) -> None:
    # Without policy-rc.d: the postinst started corosync (Debian's one-node config) and Pacemaker wrote a CIB.
    out = first_boot(tmp_path, conf="shipped", cib=True, units="enabled-active")
    assert out["systemctl"] == [*DISABLED, "start pcsd.service"]
    assert out["left"] == {"/etc/corosync": [], str(CIB): [], "/usr/sbin": []}


def test_packages_installed_under_the_policy(tmp_path: Path) -> None:
    # The real path: bootcmd wrote policy-rc.d before the packages; the units are enabled but never ran.
    out = first_boot(tmp_path, conf="shipped", cib=False, units="enabled")
    assert out["policy-rc.d"] == ["policy-rc.d exit 101"]
    assert out["systemctl"] == [*DISABLED, "start pcsd.service"]
    assert out["left"] == {"/etc/corosync": [], str(CIB): [], "/usr/sbin": []}, "policy and Debian's config gone"


def test_a_cluster_member_is_left_alone(tmp_path: Path) -> None:
    # cloud-init again on a member (a new instance-id): bootcmd writes the policy again, runcmd removes it; the
    # cluster's corosync.conf and CIB stay and no cluster service is stopped or disabled.
    out = first_boot(tmp_path, conf=PCS_CONF, cib=True, units="enabled-active")
    assert out["systemctl"] == ["start pcsd.service"]
    assert out["left"] == {
        "/etc/corosync": ["corosync.conf"],
        str(CIB): ["cib-1.raw", "cib.xml", "cib.xml.sig"],
        "/usr/sbin": [],
    }


def test_an_image_without_them(tmp_path: Path) -> None:
    out = first_boot(tmp_path, conf=None, cib=False, units="disabled")
    assert out["systemctl"] == ["start pcsd.service"]
