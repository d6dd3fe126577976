"""The lab's APT repository: the lab's stand-in for the Debian mirror a VM installs its packages from.

cloud-init installs the program's packages (`node_packages`, the user-data's `packages:`) at a node's first boot,
as on a VM. The lab has no route to a mirror, so it serves one of its own: every .deb those packages need beyond
what the node image holds (the full dependency closure, Recommends included, as the node's apt installs them),
downloaded on this machine from Debian's archive, indexed with apt-ftparchive and cached under a key made from its
recipe, like the image. `AptServer` serves it over HTTP on the lab's gateway address, inside the lab's network
namespace; each node's APT source (`deb [trusted=yes] http://<gateway>:<port>/ ./`) is written into its disk when
the lab starts it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from procs.runner import Runner, run

from .image import MIRROR, SUITE, Log, Recipe, build_once, cache_dir
from .nodes import alive, in_netns, terminate

PORT = 18000

# The servers this process started, by pid, to reap when stopped (a server outlives the `up` that started it).
_servers: dict[int, subprocess.Popen[bytes]] = {}
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


@dataclass(frozen=True)
class RepoRecipe:
    image: str
    """The image's recipe key: the closure is what the image lacks."""
    suite: str
    mirror: str
    packages: tuple[str, ...]

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def repo_recipe(image: Recipe, packages: list[str]) -> RepoRecipe:
    return RepoRecipe(image.key, SUITE, MIRROR, tuple(sorted(set(packages))))


def repo_path(recipe: RepoRecipe) -> Path:
    return cache_dir() / f"apt-{recipe.key}"


def source_line(gateway: str, port: int = PORT) -> str:
    """A node's APT source: the lab's repository (a flat one, unsigned: the lab's own, on the lab's own network)."""
    return f"deb [trusted=yes] http://{gateway}:{port}/ ./\n"


def _apt_options(work: Path, arch: str) -> list[str]:
    """apt on this machine, computing and fetching as a node would: the image's package status, Debian's archive as
    the only source, Recommends installed (Debian's default, and the image's), nothing of this machine's own state."""
    options = {
        "Dir::State": work / "state",
        "Dir::State::status": work / "status",
        "Dir::Cache": work / "cache",
        "Dir::Cache::archives": work / "archives",
        "Dir::Etc::SourceList": work / "sources.list",
        "Dir::Etc::SourceParts": work / "empty",
        "Dir::Etc::Preferences": work / "empty/preferences",
        "Dir::Etc::PreferencesParts": work / "empty",
        "APT::Architecture": arch,
        "APT::Architectures": arch,
        "APT::Install-Recommends": "true",
        "APT::Install-Suggests": "false",
        "APT::Sandbox::User": "root",
        "Acquire::Languages": "none",
        "Debug::NoLocking": "true",
    }
    return [arg for k, v in options.items() for arg in ("-o", f"{k}={v}")]


def ensure_repo(recipe: RepoRecipe, rootfs: Path, runner: Runner = run, log: Log = print) -> Path:
    """The cached repository for this recipe, built first if there is none: safe with any number of builders."""
    target = repo_path(recipe)

    def build(building: Path) -> None:
        started = time.monotonic()
        log(f"apt repo: fetching {', '.join(recipe.packages)} and what they need beyond the node image")
        work = Path(tempfile.mkdtemp(prefix=f".apt-work-{recipe.key}-", dir=cache_dir()))
        try:
            for sub in ("state/lists/partial", "cache", "archives/partial", "empty"):
                (work / sub).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(rootfs / "var/lib/dpkg/status", work / "status")
            (work / "sources.list").write_text(f"deb [signed-by={KEYRING}] {recipe.mirror} {recipe.suite} main\n")
            arch = runner(["dpkg", "--print-architecture"]).stdout.strip() or "amd64"
            apt = ["apt-get", "-q", "-y", *_apt_options(work, arch)]
            for argv in ([*apt, "update"], [*apt, "install", "--download-only", *recipe.packages]):
                done = runner(argv, timeout=1800)
                if not done.ok:
                    raise RuntimeError(f"{' '.join(argv[:3])} ... {argv[-1]} failed: {done.tail(10)}")
            building.mkdir()
            debs = sorted((work / "archives").glob("*.deb"))
            for deb in debs:
                shutil.move(deb, building / deb.name)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        index(building, runner)
        log(f"apt repo: {len(debs)} packages in {target}, {time.monotonic() - started:.0f} s")

    build_once(target, lambda t: (t / "Release").exists(), build)
    return target


def index(folder: Path, runner: Runner = run) -> None:
    """A flat repository's indexes: Packages (and .gz), and a Release listing their checksums."""
    done = runner(["apt-ftparchive", "packages", "."], cwd=folder, timeout=600)
    if not done.ok:
        raise RuntimeError(f"apt-ftparchive packages failed: {done.tail()}")
    (folder / "Packages").write_text(done.stdout)
    with gzip.open(folder / "Packages.gz", "wt") as f:
        f.write(done.stdout)
    done = runner(["apt-ftparchive", "release", "."], cwd=folder, timeout=600)
    if not done.ok:
        raise RuntimeError(f"apt-ftparchive release failed: {done.tail()}")
    (folder / "Release").write_text(done.stdout)


class AptServer:
    """`python -m http.server` serving a repository on the lab's gateway, inside the lab's namespace. Its pid is
    recorded in the lab's state directory, so `down` stops it even after the `up` that started it crashed."""

    def __init__(self, state_dir: Path, netns: str, gateway: str, port: int = PORT, runner: Runner = run) -> None:
        self.pid_file = state_dir / "apt-server.pid"
        self.log_file = state_dir / "apt-server.log"
        self.netns = netns
        self.gateway = gateway
        self.port = port
        self.run = runner

    @property
    def url(self) -> str:
        return f"http://{self.gateway}:{self.port}/"

    def pid(self, serving: Path | None = None) -> int | None:
        """The recorded server's pid while it still runs (serving `serving`, when given)."""
        if not self.pid_file.exists():
            return None
        pid = int(self.pid_file.read_text())
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            return None
        # Still the server this lab started (pids get reused), and serving what is asked for.
        ours = b"http.server" in argv and self.gateway.encode() in argv and str(self.port).encode() in argv
        if not ours or not alive(pid):
            return None
        return None if serving is not None and str(serving).encode() not in argv else pid

    def start(self, folder: Path, timeout: float = 30) -> None:
        """Serve `folder` (a server already serving it is kept), answering before this returns."""
        if self.pid(folder) is not None:
            return
        self.stop()
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "http.server", str(self.port), "--bind", self.gateway, "--directory", str(folder)]
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                in_netns(self.netns, argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives `lab up`: nodes booted later install from it too
            )
        _servers[proc.pid] = proc
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while not self.answers():
            if proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the lab's APT repository does not answer on {self.url}: see {self.log_file}")
            time.sleep(0.1)

    def answers(self) -> bool:
        curl = ["curl", "-sf", "-o", "/dev/null", "--max-time", "2", f"{self.url}Release"]
        return self.run(in_netns(self.netns, curl), timeout=10).ok

    def stop(self, timeout: float = 5) -> None:
        pid = self.pid()
        if pid is not None:
            terminate(pid, timeout)
            proc = _servers.pop(pid, None)
            if proc is not None:
                proc.wait(timeout)
        self.pid_file.unlink(missing_ok=True)
