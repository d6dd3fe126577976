"""The node image and the APT repository: built once per recipe, whatever number of builders ask at once.

Fake runners stand in for mmdebstrap, apt-get and apt-ftparchive, so these run in well under a second.
"""

import multiprocessing
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lab.apt_repo import ensure_repo, repo_path, repo_recipe, source_line
from lab.image import SYSTEM_PACKAGES, ensure_rootfs, image_recipe, rootfs_path
from procs.runner import Completed


class FakeBuilder:
    """mmdebstrap, apt-get and apt-ftparchive as far as the builders use them; slow enough for builders to meet."""

    def __init__(self, seconds: float = 0.3) -> None:
        self.seconds = seconds
        self.calls: list[tuple[str, ...]] = []
        self.lock = threading.Lock()

    def __call__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
        cwd: Path | None = None,
        timeout: float = 300,
    ) -> Completed:
        with self.lock:
            self.calls.append(tuple(argv))
        out = ""
        if argv[0] == "mmdebstrap":
            time.sleep(self.seconds)
            root = Path(argv[-2])
            (root / "etc").mkdir(parents=True)
            (root / "etc/debian_version").write_text("12.0\n")
            (root / "var/lib/dpkg").mkdir(parents=True)
            (root / "var/lib/dpkg/status").write_text("Package: cloud-init\nStatus: install ok installed\n\n")
        elif argv[0] == "dpkg":
            out = "amd64\n"
        elif argv[:1] == ["apt-get"] and "install" in argv:
            time.sleep(self.seconds)
            archives = Path(next(a.split("=", 1)[1] for a in argv if a.startswith("Dir::Cache::archives=")))
            for name in argv[argv.index("--download-only") + 1 :]:
                (archives / f"{name}_1.0_amd64.deb").write_text(name)
        elif argv[0] == "apt-ftparchive":
            assert cwd is not None
            out = "".join(f"Package: {p.name.split('_')[0]}\n\n" for p in sorted(cwd.glob("*.deb")))
        return Completed(tuple(argv), 0, out, "")

    def count(self, program: str, *having: str) -> int:
        return sum(1 for c in self.calls if c[0] == program and all(h in c for h in having))


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HA_LB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_image_is_what_a_cloud_image_holds() -> None:
    packages = set(image_recipe().packages)
    assert {"cloud-init", "openssh-server", "sudo"} <= packages == set(SYSTEM_PACKAGES)
    assert not packages & {"pacemaker", "corosync", "pcs", "haproxy", "resource-agents", "fence-agents", "curl"}


def test_concurrent_builders_build_the_image_once(cache: Path) -> None:
    fake = FakeBuilder()
    with ThreadPoolExecutor(4) as pool:
        roots = list(pool.map(lambda _: ensure_rootfs(image_recipe(), fake, log=lambda _: None), range(4)))
    assert roots == [rootfs_path(image_recipe())] * 4
    assert fake.count("mmdebstrap") == 1
    assert (roots[0] / "etc/debian_version").exists()
    assert sorted(p.name for p in cache.iterdir()) == [".rootfs-" + image_recipe().key + ".lock", roots[0].name]


def _build_in_process(cache: str, out: str) -> None:
    import os

    os.environ["HA_LB_CACHE"] = cache
    fake = FakeBuilder(0.5)
    ensure_rootfs(image_recipe(), fake, log=lambda _: None)
    Path(out).write_text(str(fake.count("mmdebstrap")))


def test_concurrent_processes_build_the_image_once(cache: Path, tmp_path: Path) -> None:
    # The failure CI met: two pytest-xdist workers, each its own process, on a fresh machine.
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_build_in_process, args=(str(cache), str(tmp_path / f"n{i}"))) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert sum(int((tmp_path / f"n{i}").read_text()) for i in range(3)) == 1
    assert (rootfs_path(image_recipe()) / "etc/debian_version").exists()


def test_a_killed_builders_leftovers_are_cleared(cache: Path) -> None:
    target = rootfs_path(image_recipe())
    (cache / f".building-{target.name}-999999/etc").mkdir(parents=True)
    (target / "etc").mkdir(parents=True)  # half there: a rename never happened
    fake = FakeBuilder(0)
    assert ensure_rootfs(image_recipe(), fake, log=lambda _: None) == target
    assert fake.count("mmdebstrap") == 1
    assert not list(cache.glob(".building-*"))


def test_concurrent_builders_build_the_repository_once(cache: Path) -> None:
    fake = FakeBuilder()
    root = ensure_rootfs(image_recipe(), fake, log=lambda _: None)
    recipe = repo_recipe(image_recipe(), ["pacemaker", "pcs", "haproxy", "pcs"])
    with ThreadPoolExecutor(3) as pool:
        repos = list(pool.map(lambda _: ensure_repo(recipe, root, fake, log=lambda _: None), range(3)))
    assert repos == [repo_path(recipe)] * 3
    assert fake.count("apt-get", "install") == 1 and fake.count("apt-get", "update") == 1
    assert sorted(p.name for p in repos[0].glob("*.deb")) == [
        "haproxy_1.0_amd64.deb",
        "pacemaker_1.0_amd64.deb",
        "pcs_1.0_amd64.deb",
    ]
    assert {"Packages", "Packages.gz", "Release"} <= {p.name for p in repos[0].iterdir()}
    assert not list(cache.glob(".apt-work-*")), "apt's working state is not left behind"
    # apt computed the closure against the image's own package status, not this machine's.
    install = next(c for c in fake.calls if c[0] == "apt-get" and "install" in c)
    assert any(a.startswith("Dir::State::status=") and "/.apt-work-" in a for a in install)
    assert "APT::Install-Recommends=true" in install


def test_repository_key_follows_image_and_packages() -> None:
    a = repo_recipe(image_recipe(), ["pcs", "pacemaker"])
    assert a.key == repo_recipe(image_recipe(), ["pacemaker", "pcs"]).key
    assert a.key != repo_recipe(image_recipe(), ["pacemaker", "pcs", "fence-agents"]).key


def test_a_nodes_apt_source_is_the_labs_repository() -> None:
    assert source_line("192.168.100.1", 18000) == "deb [trusted=yes] http://192.168.100.1:18000/ ./\n"
