"""The lab's node image: a Debian 12 rootfs with every package the program's user-data asks for.

Built with mmdebstrap, cached outside the repository under a key made from its recipe, rebuilt only when the
recipe changes. cloud-init's package step then has nothing to download (the lab has no route to a mirror, and the
image no APT sources).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from components.render import node_packages
from components.settings import Settings
from verify.runner import Runner, run

CACHE = Path(os.environ.get("HA_LB_CACHE", "/var/cache/ha-lb"))
MIRROR = "http://deb.debian.org/debian"

# What a node needs beyond the program's packages: init, sshd, cloud-init and the tools it calls.
SYSTEM_PACKAGES = (
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "cloud-init",
    "ifupdown",
    "iproute2",
    "iputils-ping",
    "netbase",
    "ca-certificates",
    "procps",
    "less",
    # Not used by the program: the benchmark's baseline (VRRP on the same nodes and VIP), disabled until then.
    "keepalived",
)

# Run in the new rootfs once packages are in. Pacemaker owns corosync, pacemaker and haproxy; no timers churn;
# host keys and machine-id are made per node at first boot.
CUSTOMIZE = """
systemctl disable corosync pacemaker haproxy keepalived >/dev/null 2>&1 || :
rm -f /etc/corosync/corosync.conf
systemctl enable pcsd ssh >/dev/null 2>&1
systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service man-db.timer \
  fstrim.timer systemd-timesyncd.service >/dev/null 2>&1
rm -f /etc/ssh/ssh_host_*
# The lab has no mirror: without APT sources cloud-init's `apt-get update` returns at once (with them it spends
# 8 s failing to resolve one) and `apt-get install` finds every package already installed.
rm -f /etc/apt/sources.list
printf 'datasource_list: [ NoCloud, None ]\\n' > /etc/cloud/cloud.cfg.d/90_ha_lb_lab.cfg
printf 'auto lo\\niface lo inet loopback\\nsource /etc/network/interfaces.d/*\\n' > /etc/network/interfaces
truncate -s0 /etc/machine-id
rm -f /var/lib/dbus/machine-id
"""


@dataclass(frozen=True)
class Recipe:
    suite: str
    mirror: str
    packages: tuple[str, ...]
    customize: str

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def recipe_for(s: Settings) -> Recipe:
    packages = tuple(sorted({*SYSTEM_PACKAGES, *node_packages(s)}))
    return Recipe("bookworm", MIRROR, packages, CUSTOMIZE)


def rootfs_path(recipe: Recipe) -> Path:
    return CACHE / f"rootfs-{recipe.key}"


def ensure_rootfs(recipe: Recipe, runner: Runner = run, log: object = print) -> Path:
    """The cached rootfs for this recipe, built first if there is none."""
    target = rootfs_path(recipe)
    if (target / "etc/debian_version").exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    building = CACHE / f".building-{recipe.key}-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    started = time.monotonic()
    if callable(log):
        log(f"image: building the node rootfs ({len(recipe.packages)} packages, about 2 minutes, once per recipe)")
    argv = [
        "mmdebstrap",
        "--variant=minbase",
        f"--include={','.join(recipe.packages)}",
        f'--customize-hook=chroot "$1" sh -ec {_sh_quote(recipe.customize)}',
        recipe.suite,
        str(building),
        recipe.mirror,
    ]
    done = runner(argv, timeout=1800)
    if not done.ok:
        shutil.rmtree(building, ignore_errors=True)
        raise RuntimeError(f"mmdebstrap failed: {done.tail(10)}")
    building.rename(target)
    if callable(log):
        log(f"image: built {target} in {time.monotonic() - started:.0f} s")
    return target


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"
