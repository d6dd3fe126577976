"""The lab's node image: a Debian 12 rootfs standing in for Debian's genericcloud image.

It holds what that image holds for the program's purposes (init, sshd, cloud-init and the tools it calls: the
`SYSTEM_PACKAGES`) and none of the program's packages: cloud-init installs those at first boot, from the lab's APT
repository (`apt_repo.py`), as on a VM, postinst scripts and all. Built with mmdebstrap, cached outside the
repository under a key made from its recipe, rebuilt only when the recipe changes; any number of builders may ask
for it at once (a lock in the cache, and a second look once it is held).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from procs.runner import Runner, run

MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"


def cache_dir() -> Path:
    return Path(os.environ.get("HA_LB_CACHE", "/var/cache/ha-lb"))


# What a genericcloud image gives a node before cloud-init runs: init, sshd, cloud-init and the tools it calls.
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
    "sudo",  # the admin user cloud-init creates runs every step through it
    # Not used by the program: the benchmark's baseline (VRRP on the same nodes and VIP), disabled until then.
    "keepalived",
)

# Run in the new rootfs once packages are in. Host keys and machine-id are made per node at first boot; no timers
# churn. No APT sources: the lab writes each node's (its repository) into the node's disk when it starts it.
CUSTOMIZE = """
systemctl disable keepalived >/dev/null 2>&1 || :
systemctl enable ssh >/dev/null 2>&1
systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service man-db.timer \
  fstrim.timer systemd-timesyncd.service >/dev/null 2>&1
rm -f /etc/ssh/ssh_host_*
rm -f /etc/apt/sources.list
printf 'datasource_list: [ NoCloud, None ]\\n' > /etc/cloud/cloud.cfg.d/90_ha_lb_lab.cfg
printf 'auto lo\\niface lo inet loopback\\nsource /etc/network/interfaces.d/*\\n' > /etc/network/interfaces
truncate -s0 /etc/machine-id
rm -f /var/lib/dbus/machine-id
"""

Log = Callable[[str], None]


@dataclass(frozen=True)
class Recipe:
    suite: str
    mirror: str
    packages: tuple[str, ...]
    customize: str

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def image_recipe() -> Recipe:
    """The node image: the same for every stack (the stack's packages come from the APT repository)."""
    return Recipe(SUITE, MIRROR, tuple(sorted(SYSTEM_PACKAGES)), CUSTOMIZE)


def rootfs_path(recipe: Recipe) -> Path:
    return cache_dir() / f"rootfs-{recipe.key}"


@contextmanager
def cache_lock(name: str) -> Iterator[None]:
    """An exclusive lock on `<cache>/.<name>.lock`, held for the block: between threads and processes alike (each
    holder opens the file itself, so each has an open file description of its own for flock)."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f".{name}.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build_once(target: Path, ready: Callable[[Path], bool], build: Callable[[Path], None]) -> bool:
    """Make `target` with `build(tmp)` then rename, unless it is ready; safe with any number of builders at once.
    Returns whether this call built it. Under the lock: look again (another builder may have finished while we
    waited), clear what a killed builder left, build beside the target, rename into place."""
    if ready(target):
        return False
    with cache_lock(target.name):
        if ready(target):
            return False
        for stale in target.parent.glob(f".building-{target.name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if target.exists():
            shutil.rmtree(target)  # half there: never renamed by a finished build
        building = target.parent / f".building-{target.name}-{os.getpid()}"
        try:
            build(building)
            building.rename(target)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return True


def ensure_rootfs(recipe: Recipe, runner: Runner = run, log: Log = print) -> Path:
    """The cached rootfs for this recipe, built first if there is none."""
    target = rootfs_path(recipe)

    def build(building: Path) -> None:
        started = time.monotonic()
        log(f"image: building the node rootfs ({len(recipe.packages)} packages, about 1-2 minutes, once per recipe)")
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
            raise RuntimeError(f"mmdebstrap failed: {done.tail(10)}")
        log(f"image: built {target} in {time.monotonic() - started:.0f} s")

    build_once(target, lambda t: (t / "etc/debian_version").exists(), build)
    return target


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def baked_path(rootfs: Path, repo: Path, script: str) -> Path:
    key = hashlib.sha256(f"{rootfs.name}\n{repo.name}\n{script}".encode()).hexdigest()[:16]
    return cache_dir() / f"baked-{key}"


def ensure_baked(rootfs: Path, repo: Path, script: str, runner: Runner = run, log: Log = print) -> Path:
    """The node image with the stack's packages baked in (`components.bake`): a copy of `rootfs` in which the bake
    script ran, in a container with no init, as virt-customize runs it in a qcow2. Its mirror is the lab's APT
    repository (`repo`, bind-mounted), as a real bake's is Debian's; the copy keeps no APT source, as the plain
    image keeps none. Cached like the image, keyed by the image, the repository and the script."""
    target = baked_path(rootfs, repo, script)

    def build(building: Path) -> None:
        started = time.monotonic()
        log("image: baking the stack's packages into a copy of the node image (once per package list)")
        done = runner(["cp", "-a", "--reflink=auto", str(rootfs), str(building)], timeout=600)
        if not done.ok:
            raise RuntimeError(f"copying the node image failed: {done.tail()}")
        mirror = "/run/ha-lb-mirror"
        (building / "etc/apt/sources.list").write_text(f"deb [trusted=yes] file:{mirror} ./\n")
        (building / "root/ha-lb-bake.sh").write_text(script)
        argv = ["systemd-nspawn", "-q", "--register=no", "--keep-unit", "-D", str(building)]
        argv += [f"--bind-ro={repo}:{mirror}", "--private-network", "sh", "/root/ha-lb-bake.sh"]
        done = runner(argv, timeout=1800)
        (building / "root/ha-lb-bake.sh").unlink(missing_ok=True)
        (building / "etc/apt/sources.list").unlink(missing_ok=True)
        if not done.ok:
            raise RuntimeError(f"baking the node image failed: {done.tail(15)}")
        log(f"image: baked {target} in {time.monotonic() - started:.0f} s")

    build_once(target, lambda t: (t / "usr/sbin/pcs").exists(), build)
    return target
