"""The bake script (components/bake.py) as text and argv; the lab's e2e bakes an image with it for real."""

import shlex
import subprocess
from pathlib import Path

import pytest

from components.bake import CLUSTER_UNITS, bake_script, main, virt_customize_argv
from components.render import every_package, node_packages
from verify.stackfile import settings_from_stack_file

ROOT = Path(__file__).resolve().parent.parent


def test_it_bakes_every_package_of_the_stack_under_the_policy() -> None:
    s = settings_from_stack_file(ROOT / "Pulumi.dev.yaml")
    script = bake_script(every_package(s))
    install = next(line for line in script.splitlines() if line.startswith("apt-get install"))
    assert shlex.split(install)[-len(node_packages(s)) :] == node_packages(s)
    # Nothing starts while packages install: the policy comes first, and goes on any exit.
    assert script.index("exit 101") < script.index("apt-get install")
    assert "trap 'rm -f /usr/sbin/policy-rc.d' EXIT" in script
    for unit in CLUSTER_UNITS:
        assert unit in script
    assert "rm -f /etc/corosync/corosync.conf /var/lib/pacemaker/cib/cib*" in script
    # No key a postinst made stays for every VM of the image to share.
    assert "rm -rf /etc/corosync/qnetd/nssdb /etc/corosync/qdevice/net/nssdb /etc/pacemaker/authkey" in script


def test_it_is_valid_shell_and_quotes_names() -> None:
    script = bake_script(["pcs", "odd;name"])
    assert "'odd;name'" in script
    done = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True)
    assert done.returncode == 0, done.stderr


def test_no_packages_is_refused() -> None:
    with pytest.raises(ValueError, match="no packages"):
        bake_script([])


def test_virt_customize_runs_the_script_on_the_copy(tmp_path: Path) -> None:
    argv = virt_customize_argv(tmp_path / "baked.qcow2", tmp_path / "bake.sh")
    assert argv == [
        "virt-customize",
        "--format",
        "qcow2",
        "-a",
        str(tmp_path / "baked.qcow2"),
        "--run",
        str(tmp_path / "bake.sh"),
    ]


def test_a_bad_stack_is_refused_before_anything_is_copied(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = tmp_path / "Pulumi.bad.yaml"
    stack.write_text("config:\n  ha-lb:nodes:\n    count: 0\n")
    out = tmp_path / "baked.qcow2"
    assert main(["--stack", str(stack), "--from", str(tmp_path / "none.qcow2"), "--out", str(out)]) == 2
    assert "ha-lb:vip" in capsys.readouterr().err
    assert not out.exists()
