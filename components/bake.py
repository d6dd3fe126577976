"""A baked base image: Debian 12 with the program's packages already installed, so a node's first boot installs
nothing and a bare node reaches pcsd in seconds, not the minute a first-boot install of about 145 packages takes.

`bake_script` is what runs inside the image, as root, with no init running (virt-customize's appliance for a
qcow2, a container for the lab's image): the same script for both. It leaves the image as the first-boot install
would have left a node just before the program's runcmd, and that runcmd still runs on the baked node: it is a
no-op there, so a baked image and a plain one are handled alike.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

# Units the image holds disabled: Pacemaker, not the OS, starts corosync, pacemaker and haproxy; a quorum device's
# arbiter shares the image, and its qnetd step enables qnetd there (the nodes never run it).
CLUSTER_UNITS = ("haproxy", "pacemaker", "corosync-qdevice", "corosync", "corosync-qnetd")


def bake_script(packages: Sequence[str]) -> str:
    """The shell script that bakes `packages` into the image it runs in."""
    if not packages:
        raise ValueError("bake_script: no packages to bake")
    names = " ".join(shlex.quote(p) for p in packages)
    units = " ".join(CLUSTER_UNITS)
    return f"""#!/bin/sh
# ha-lb: bake the program's packages into this image (rendered by components/bake.py).
set -eu
export DEBIAN_FRONTEND=noninteractive
# Debian's postinst scripts start what they install: nothing may start while baking (and no init runs here).
printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d
chmod 0755 /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -q
apt-get install -y -q -o Dpkg::Options::=--force-confold {names}
# As the program's runcmd leaves a node: the cluster's units disabled, Debian's one-node corosync.conf and any CIB
# gone (pcs refuses a node holding either), pcsd enabled (it starts at boot, before cloud-init is done).
for u in {units}; do
  if systemctl -q is-enabled "$u.service" 2>/dev/null; then systemctl disable "$u.service"; fi
done
rm -f /etc/corosync/corosync.conf /var/lib/pacemaker/cib/cib*
systemctl enable pcsd.service
# A template, not an instance: no package lists, no cloud-init state, no identity; each VM makes its own.
apt-get clean
rm -rf /var/lib/apt/lists/*
cloud-init clean --logs
rm -f /etc/ssh/ssh_host_* /var/lib/dbus/machine-id
# Keys the postinst scripts made, which every VM of the image would share: qnetd's certificate authority (an
# arbiter's qnetd step makes its own where there is none), corosync-qdevice's database (pcs makes it when a device is
# added), Pacemaker's authkey (pcs cluster setup gives the cluster its own).
rm -rf /etc/corosync/qnetd/nssdb /etc/corosync/qdevice/net/nssdb /etc/pacemaker/authkey
# Emptied, not removed: systemd then makes a new id at first boot without treating it as a first boot, which would
# apply Debian's presets and enable (and start) corosync, pacemaker and haproxy.
truncate -s 0 /etc/machine-id
echo "ha-lb: baked: {names}"
"""


def virt_customize_argv(image: Path, script: Path) -> list[str]:
    """Bake a qcow2 in place with libguestfs's virt-customize (it boots the image's disk in a small appliance with
    network, runs the script there, and leaves no trace of its own)."""
    return ["virt-customize", "--format", "qcow2", "-a", str(image), "--run", str(script)]


def main(argv: list[str] | None = None) -> int:
    """`python -m components.bake --stack Pulumi.dev.yaml --from debian-12-genericcloud-amd64.qcow2 --out x.qcow2`"""
    import argparse
    import shutil
    import subprocess
    import sys
    import tempfile

    from verify.stackfile import settings_from_stack_file

    from .render import every_package
    from .settings import SettingsError

    p = argparse.ArgumentParser(prog="scripts/bake-image", description=__doc__.splitlines()[0])
    p.add_argument("--stack", type=Path, required=True, help="the stack file whose packages to bake")
    p.add_argument("--from", dest="source", type=Path, required=True, help="a Debian 12 genericcloud qcow2")
    p.add_argument("--out", type=Path, required=True, help="the baked qcow2 to write (the source is not changed)")
    a = p.parse_args(argv)
    try:
        packages = every_package(settings_from_stack_file(a.stack))
    except SettingsError as err:
        print(err, file=sys.stderr)
        return 2
    if shutil.which("virt-customize") is None:
        print("bake-image: virt-customize not found: apt-get install libguestfs-tools", file=sys.stderr)
        return 2
    shutil.copyfile(a.source, a.out)
    with tempfile.NamedTemporaryFile("w", suffix=".sh", prefix="ha-lb-bake-") as script:
        script.write(bake_script(packages))
        script.flush()
        done = subprocess.run(virt_customize_argv(a.out, Path(script.name)), check=False)
    if done.returncode != 0:
        a.out.unlink(missing_ok=True)
        return done.returncode
    print(f"bake-image: {a.out}: set ha-lb:libvirt.baseImage to it and ha-lb:cloudInit.packagesInImage to true")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
