"""Failover benchmark on the lab: outage on a hard kill of the VIP's node, and on a planned switchover.

    sudo .venv/bin/python -m bench.failover [--nodes 2] [--fencing off] [--runs 5] [--switchovers 3] [--profiles ...]
        [--image cloud|baked] [--cpu] [--journals DIR]

For each Pacemaker setup it brings up a lab of `--nodes` nodes with the program (fencing off unless `--fencing on`:
then each kill's outage includes the fence), then, run after run: probes the stats page
on the VIP every 10 ms (timed by completion), SIGKILLs the container holding the VIP, waits for service from a
survivor, and boots the dead node again. keepalived (Debian's, VRRP) runs on the same nodes with the same VIP as
the baseline. Prints min/median/max per setup and the ratio to keepalived; writes bench/out/failover.json and a
timeline PNG (`failover-<n>-nodes-fencing-<on|off>.json` for other runs). Each kill also says how often the
survivor's ring re-formed with nobody lost in the 30 s before it (knet links dropping on a busy host).
Figures, never assertions: the tests prove behaviour, this measures it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import cpu
from bench.journal import journal, phases, when
from lab import operations as ops
from lab.probe import outage_around

OUT = Path(__file__).resolve().parent / "out"

PROFILES: dict[str, dict[str, Any]] = {
    "guides: with-vip, token 3000": {"placement": "with-vip", "tokenMs": 3000},
    "with-vip, token 1000": {"placement": "with-vip", "tokenMs": 1000},
    "everywhere, token 1000": {"placement": "everywhere", "tokenMs": 1000},
    "everywhere, token 500": {"placement": "everywhere", "tokenMs": 500},
    "everywhere, token 400": {"placement": "everywhere", "tokenMs": 400},
    "everywhere, token 350": {"placement": "everywhere", "tokenMs": 350},
    "everywhere, token 300": {"placement": "everywhere", "tokenMs": 300},
    "default profile": {"profile": "default"},
    "fast profile": {"profile": "fast"},
}


@dataclass
class Result:
    name: str
    outages: list[float] = field(default_factory=list)
    switchovers: list[float] = field(default_factory=list)
    bring_up_s: float | None = None
    token_ms: int | None = None
    """The token the cluster ran with (corosync's runtime value): detection is token + consensus, 2.2 x token."""
    killed_dc: list[bool] = field(default_factory=list)
    """Whether each killed node was the DC too (then the survivors elect one and join before the VIP can start)."""
    outages_every_50ms: list[float] = field(default_factory=list)
    """The same kills as a prober every 50 ms saw them (every fifth probe): what the coarser ruler adds."""
    detections: list[float] = field(default_factory=list)
    """Each kill's detection as measured: seconds from the kill until a survivor's Pacemaker logs the node lost."""
    cpu_windows: list[dict[str, Any]] = field(default_factory=list)
    """With `--cpu`: each kill's CPU from the node logged lost to the VIP started: the nodes' share of the cores,
    corosync's and Pacemaker's (shares of one CPU), and how long Pacemaker on the DC and the VIP's new node waited."""
    reformed_before: list[int] = field(default_factory=list)
    """Each kill: memberships the survivor logged in the 30 s before it with nobody joining or leaving (corosync
    logs `... was formed. Members` and nothing after): the ring re-forming as knet links dropping on a busy host
    make it, not the last kill's node coming back."""
    steps: dict[str, float] = field(default_factory=dict)
    timelines: list[list[tuple[float, bool]]] = field(default_factory=list)
    """Every run's probes: (completion time relative to the kill, ok)."""

    def median_timeline(self) -> list[tuple[float, bool]]:
        """The probes of the run whose outage is the median one."""
        if not self.timelines:
            return []
        ranked = sorted(range(len(self.outages)), key=lambda i: self.outages[i])
        return (
            self.timelines[ranked[len(ranked) // 2]] if len(self.timelines) == len(self.outages) else self.timelines[0]
        )


JOURNAL_BEFORE_S = 30
"""Each kill's journals start this long before it."""
# A re-formation with the same members: nobody joined, nobody left.
SAME_MEMBERS = re.compile(r"A new membership \(\S+\) was formed\. Members\s*$")


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def figures(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f}, n={len(values)})"


def settle(ctx: ops.LabContext, timeout: float = 120) -> None:
    """Every node online and the VIP with HAProxy, before the next run."""
    names = {n.name for n in ctx.settings.node_list}

    def settled() -> bool:
        if ops.node_states(ctx) != dict.fromkeys(names, True):
            return False
        placed = ops.resource_nodes(ctx)
        vip = placed.get("vip", set())
        expected = names if ctx.settings.placement == "everywhere" else vip
        return len(vip) == 1 and placed.get("haproxy") == expected

    ops.wait_for("the cluster settled", settled, timeout, every=0.5)


def reboot_dead_nodes(ctx: ops.LabContext) -> None:
    """What `lab up` does for a dead node: boot it again from its own disk (nothing else changes)."""
    config, secret_keys = ops.lab_config(ctx)  # with the lab's fence secret: its BMCs, as `lab up`
    _, error = ctx.lab.apply(config, secret_keys=secret_keys)
    if error is not None:
        raise RuntimeError(f"could not boot the dead node again: {error}")


def vip_left(ctx: ops.LabContext, node: str) -> Callable[[], bool]:
    return lambda: ops.vip_node(ctx) not in (None, node)


class CpuWatch:
    """Snapshots of the nodes' CPU every `every` seconds, from `offset` seconds after `start()` until `stop()` or
    `limit` seconds more, taken by a thread; the groups are opened before, while every node runs."""

    def __init__(self, ctx: ops.LabContext, offset: float, every: float = 0.025, limit: float = 1.2) -> None:
        self.offset, self.every, self.limit = offset, every, limit
        names = [n.name for n in ctx.settings.node_list]
        self.reader = cpu.Reader(cpu.groups(cpu.node_groups(names, ctx.lab.containers.groups)))
        self.snaps: list[cpu.Snapshot] = []
        self.t0 = 0.0
        self.done = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.t0 = time.monotonic()

        def run() -> None:
            due = self.t0 + self.offset
            while not self.done.is_set() and due <= self.t0 + self.offset + self.limit:
                self.done.wait(max(0.0, due - time.monotonic()))
                spent = time.thread_time()
                snap = self.reader.snapshot(time.monotonic())
                self.snaps.append(replace(snap, cost=time.thread_time() - spent))
                due += self.every

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.done.set()
        if self.thread is not None:
            self.thread.join()
        self.reader.close()

    def between(self, start: float, end: float) -> cpu.Window | None:
        """The window from `start` to `end` seconds after `start()`, cut at the snapshots around them."""
        pair = cpu.bracket(self.snaps, self.t0 + start, self.t0 + end)
        if pair is None:
            return None
        before, after = pair
        cost = sum(s.cost for s in self.snaps if before.at < s.at <= after.at)
        return cpu.window(before, after, cpus=os.cpu_count() or 1, cost=cost)


def cpu_report(used: cpu.Window, dc: str | None, survivor: str | None) -> dict[str, Any]:
    """Print and return one kill's CPU from the node logged lost to the VIP started: the nodes' share of the cores,
    the watched services, and how long some Pacemaker process on the DC and on the VIP's new node waited for a CPU."""
    top = used.top()
    waited: dict[str, float | None] = {}
    for role, node in (("the DC", dc), ("the VIP's new node", survivor)):
        if node:
            wait = used.waited.get((node, "pacemaker"))
            waited[f"pacemaker on {role} {node}"] = None if wait is None else round(wait, 3)
    busiest = ", ".join(f"{c} {s:.2f}" for c, s in top)
    waits = ", ".join(f"{k} " + ("n/a (no pressure figures)" if v is None else f"{v:.3f} s") for k, v in waited.items())
    print(
        f"    CPU over {used.seconds:.2f} s from lost to VIP started: the nodes used {used.nodes_share:.0%} of "
        f"{used.cpus} cores; CPUs: {busiest}; waited for a CPU: {waits} (the accounting: {used.cost * 1000:.1f} ms CPU)"
    )
    return {
        "seconds": round(used.seconds, 3),
        "nodes_share": round(used.nodes_share, 3),
        "top": [(c, round(s, 3)) for c, s in top],
        "waited": waited,
        "accounting_cpu_s": round(used.cost, 4),
    }


def cpu_summary(windows: list[dict[str, Any]]) -> str:
    """Medians and ranges over the kills: the nodes' share of the cores, Pacemaker's waits on the DC and new node."""

    def spread(values: list[float], scale: float, unit: str) -> str:
        return f"{statistics.median(values) * scale:.0f}{unit} ({min(values) * scale:.0f}-{max(values) * scale:.0f})"

    parts = [f"the nodes used {spread([w['nodes_share'] for w in windows], 100, '%')} of the cores"]
    for i, role in enumerate(("the DC", "the VIP's new node")):
        waits = [v for w in windows if len(w["waited"]) > i and (v := list(w["waited"].values())[i]) is not None]
        if waits:
            parts.append(f"Pacemaker on {role} waited {spread(waits, 1000, ' ms')} for a CPU")
    return ", ".join(parts)


def kill_runs(
    ctx: ops.LabContext,
    result: Result,
    runs: int,
    holder: Callable[[], str | None],
    after: Callable[[str], None],
    pacemaker: bool = True,
    cpu_watch: bool = False,
    journals: Path | None = None,
) -> None:
    """Kill whichever node holds the VIP, `runs` times: outage and probes of each, then boot it again. `cpu_watch`:
    account for the nodes' CPU from the node logged lost to the VIP started (Pacemaker only). `journals`: keep the
    survivor's and the DC's cluster journals of each kill there."""
    for i in range(runs):
        home = holder()
        assert home is not None, "no node holds the VIP"
        dc = ops.dc_node(ctx) if pacemaker else None
        # A kill counted as "not the DC" must be known not to be.
        assert dc is not None or not pacemaker, "no node names a DC"
        # From a little before detection is due (2.2 x token), to be cut at the node lost and the VIP started.
        offset = 2.2 * result.token_ms / 1000 - 0.2 if result.token_ms else None
        watch = CpuWatch(ctx, offset) if cpu_watch and offset is not None and pacemaker else None

        def kill(node: str = home, w: CpuWatch | None = watch) -> None:
            if w is not None:
                w.start()
            ctx.lab.containers.kill(node)

        try:
            outage, samples, at = ops.measure_outage(ctx, kill)
        finally:
            if watch is not None:
                watch.stop()
        result.outages.append(outage.seconds)
        coarse = outage_around(sorted(samples, key=lambda s: s.start)[::5], at)
        if coarse is not None:
            result.outages_every_50ms.append(coarse.seconds)
        result.timelines.append([(s.end - at, s.ok) for s in samples])
        survivor = ops.vip_node(ctx)
        since = at - JOURNAL_BEFORE_S
        lines = journal(ctx, survivor, since) if survivor and pacemaker else []
        seen = phases(lines, home, at)
        if lines:
            stamps = [when(line) for line in lines if SAME_MEMBERS.search(line)]
            result.reformed_before.append(sum(1 for s in stamps if s is not None and since <= s < at))
        if journals is not None and survivor and pacemaker:
            for node in sorted({survivor, *([dc] if dc and dc != home else [])}):
                kept = lines if node == survivor else journal(ctx, node, since)
                (journals / f"{slug(result.name)}-kill{i + 1}-{node}.log").write_text("\n".join(kept) + "\n")
        lost, started = seen.get("membership lost"), seen.get("VIP started")
        said = ""
        if lost is not None:
            result.detections.append(lost)
            result.killed_dc.append(dc == home)
            said = f" (node lost after {lost:.2f} s" + (f", VIP started after {started:.2f} s)" if started else ")")
            said += " (it was the DC)" if dc == home else ""
        if result.reformed_before and lines:
            said += f" (ring re-formed {result.reformed_before[-1]} times, nobody lost, in the 30 s before)"
        print(f"  {result.name}: kill {i + 1}/{runs}: {outage.seconds:.2f} s{said}", flush=True)
        used = watch.between(lost, started) if watch is not None and lost is not None and started else None
        if used is not None and watch is not None:
            result.cpu_windows.append(cpu_report(used, dc, survivor))
        elif watch is not None:
            print("    CPU: no window (the journal gave no loss or no VIP start inside the snapshots)")
        reboot_dead_nodes(ctx)
        after(home)


def reachable(ctx: ops.LabContext, node: str) -> Callable[[], bool]:
    return lambda: ctx.lab.containers.is_running(node) and ctx.on(node, "true", timeout=5)[0]


LIVE: list[ops.LabContext] = []
"""Labs brought up and not yet down: what a stopped benchmark takes down."""


def pacemaker_runs(
    name: str,
    cluster: dict[str, Any],
    runs: int,
    switchovers: int,
    work: Path,
    keep: bool,
    nodes: int = 2,
    image: str | None = None,
    cpu_watch: bool = False,
    journals: Path | None = None,
) -> tuple[Result, ops.LabContext]:
    result = Result(name)
    stack = ops.lab_stack(work, "bench", nodes=nodes, cluster=cluster, image=image)
    ctx = ops.context(stack, state_dir=work / "lab", log=lambda _: None)
    LIVE.append(ctx)
    try:
        result.bring_up_s = ops.up(ctx)
        ok, out = ctx.on(ctx.settings.first_node.name, "corosync-cmapctl -g runtime.config.totem.token", timeout=15)
        result.token_ms = int(out.rsplit("=", 1)[1]) if ok and "=" in out else None
        result.steps = dict(ctx.lab.step_seconds)
        settle(ctx)
        if cpu_watch and result.token_ms is None:
            print("  --cpu: corosync's token could not be read, so no CPU windows", flush=True)
        kill_runs(
            ctx, result, runs, lambda: ops.vip_node(ctx), lambda _: settle(ctx), cpu_watch=cpu_watch, journals=journals
        )
        for i in range(switchovers):
            home = ops.vip_node(ctx)
            other = next(n.name for n in ctx.settings.node_list if n.name != home)
            assert home is not None

            def standby(h: str = home, o: str = other) -> None:
                ok, _ = ctx.on(o, f"pcs node standby {h}", timeout=30)
                assert ok

            outage, _, _ = ops.measure_outage(ctx, standby, vip_left(ctx, home))
            seconds = outage.seconds
            result.switchovers.append(seconds)
            print(f"  {name}: planned switchover {i + 1}/{switchovers}: {seconds:.2f} s", flush=True)
            ctx.on(other, f"pcs node unstandby {home}", timeout=30)
            settle(ctx)
        if not keep:
            take_down(ctx)
    except BaseException:
        take_down(ctx)  # a failed run leaves no lab behind (the caller downs only a kept one)
        raise
    return result, ctx


def take_down(ctx: ops.LabContext) -> None:
    if ctx in LIVE:
        ops.down(ctx, run_deletes=False)
        LIVE.remove(ctx)


def stopped(signum: int, _frame: object) -> None:
    """SIGTERM: unwind through every `finally`, which takes the labs down; a second one does not cut that short."""
    signal.signal(signum, signal.SIG_IGN)
    sys.exit(128 + signum)


KEEPALIVED_CONF = """global_defs {{
  script_user root
  enable_script_security
}}
vrrp_instance ha_lb {{
  state BACKUP
  interface {nic}
  virtual_router_id 51
  priority {priority}
  advert_int {advert}
  nopreempt
  unicast_src_ip {own}
  unicast_peer {{
{peers}
  }}
  virtual_ipaddress {{
    {vip}/{prefix} dev {nic}
  }}
}}
"""


def start_keepalived(ctx: ops.LabContext, node: str, advert: float) -> None:
    s = ctx.settings
    me = next(n for n in s.node_list if n.name == node)
    peers = "\n".join(f"    {n.address}" for n in s.node_list if n.name != node)
    conf = KEEPALIVED_CONF.format(
        nic=s.vip_nic, priority=100 - s.node_list.index(me), advert=advert, own=me.address, peers=peers,
        vip=s.vip.address, prefix=s.vip_prefix,
    )  # fmt: skip
    address = str(me.address)
    script = (
        "pcs cluster stop >/dev/null 2>&1 || :; "
        "cat > /etc/keepalived/keepalived.conf; echo 1 > /proc/sys/net/ipv4/ip_nonlocal_bind; "
        "systemctl restart haproxy keepalived"
    )
    done = ctx.lab.ssh.exec(ctx.connection(address, 10), f"sudo -n sh -c '{script}'", stdin=conf)
    if not done.ok:
        raise RuntimeError(f"keepalived on {node}: {done.tail()}")


def keepalived_holder(ctx: ops.LabContext) -> str | None:
    for node in ops.alive_nodes(ctx):
        ok, out = ctx.on(node, f"ip -4 -o addr show to {ctx.settings.vip.address}/32", timeout=10)
        if ok and out.strip():
            return node
    return None


def switch_to_keepalived(ctx: ops.LabContext, advert: float) -> None:
    """The Pacemaker cluster stopped (and disabled) on every node, keepalived and HAProxy running on each instead."""
    ctx.on(ctx.settings.first_node.name, "pcs cluster disable --all", timeout=60)
    ctx.on(ctx.settings.first_node.name, "pcs cluster stop --all", timeout=120)
    for n in ctx.settings.node_list:
        start_keepalived(ctx, n.name, advert)
    ops.wait_for("keepalived holding the VIP", lambda: keepalived_holder(ctx) is not None, 30)


def keepalived_runs(ctx: ops.LabContext, runs: int, advert: float) -> Result:
    result = Result(f"keepalived, advert_int {advert:g}")
    switch_to_keepalived(ctx, advert)

    def restart_keepalived(node: str) -> None:
        ops.wait_for("ssh on the rebooted node", reachable(ctx, node), 60)
        start_keepalived(ctx, node, advert)

    kill_runs(ctx, result, runs, lambda: keepalived_holder(ctx), restart_keepalived, pacemaker=False)
    return result


def load_result(data: dict[str, Any]) -> Result:
    """A saved result; files from before per-run timelines hold the first run's only."""
    data = dict(data)
    first = data.pop("timeline", None)
    if not data.get("timelines") and first:
        data["timelines"] = [first]
    return Result(**data)


def timeline_png(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 0.6 + 0.55 * len(results)))
    for row, r in enumerate(results):
        timeline = r.median_timeline()
        ok = [t for t, good in timeline if good and -2 <= t <= 10]
        bad = [t for t, good in timeline if not good and -2 <= t <= 10]
        ax.scatter(ok, [row] * len(ok), s=6, color="tab:green", marker="|")
        ax.scatter(bad, [row] * len(bad), s=6, color="tab:red", marker="|")
        label = f"{figures(r.outages)}"
        ax.text(10.1, row, label, va="center", fontsize=8)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(results)), [r.name for r in results], fontsize=8)
    ax.set_xlim(-2, 14)
    ax.set_xlabel("seconds from SIGKILL of the VIP's node (green: probe answered, red: failed; by completion)")
    which = "the median run" if all(len(r.timelines) == len(r.outages) for r in results) else "the first run"
    ax.set_title(
        f"VIP availability around a hard kill of the VIP's node: {which} of each (right: median, min-max)", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.failover", description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=2)
    p.add_argument("--fencing", choices=["on", "off"], default="off")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--switchovers", type=int, default=3)
    p.add_argument("--profiles", nargs="*", default=list(PROFILES)[:4], choices=list(PROFILES))
    p.add_argument("--keepalived-advert", type=float, nargs="*", default=[1.0])
    p.add_argument("--image", choices=ops.IMAGES, default="cloud", help="baked: nodes boot with the packages in")
    p.add_argument(
        "--cpu", action="store_true", help="each kill: the nodes' CPU from the node logged lost to the VIP started"
    )
    p.add_argument("--journals", type=Path, help="keep each kill's journals (survivor, DC) in this folder")
    p.add_argument("--plot", type=Path, nargs="+", help="only redraw the timeline from saved failover.json files")
    a = p.parse_args(argv)
    signal.signal(signal.SIGTERM, stopped)  # by default SIGTERM ends the process before its `finally`
    if a.plot:
        loaded = [load_result(r) for f in a.plot for r in json.loads(f.read_text())]
        timeline_png([r for r in loaded if r.outages], OUT / "failover-timeline.png")
        print(f"wrote {OUT / 'failover-timeline.png'}")
        return 0
    OUT.mkdir(exist_ok=True)
    if a.journals is not None:
        a.journals.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    last_ctx = None
    with tempfile.TemporaryDirectory(prefix="ha-lb-bench-") as tmp:
        try:
            for i, name in enumerate(a.profiles):
                work = Path(tmp) / f"p{i}"
                work.mkdir()
                keep = i == len(a.profiles) - 1
                print(f"== {name}, {a.nodes} nodes, fencing {a.fencing}", flush=True)
                cluster = {**PROFILES[name], "stonith": a.fencing == "on"}
                result, ctx = pacemaker_runs(
                    name, cluster, a.runs, a.switchovers, work, keep, a.nodes, a.image, a.cpu, a.journals
                )
                results.append(result)
                if keep:
                    last_ctx = ctx
            if last_ctx is not None and a.runs > 0:
                for advert in a.keepalived_advert:
                    print(f"== keepalived advert_int {advert:g} (same nodes, same VIP)", flush=True)
                    results.append(keepalived_runs(last_ctx, a.runs, advert))
        finally:
            for ctx in list(LIVE):  # the kept lab, and any a stop caught between its bring-up and here
                take_down(ctx)
    baseline = next((r for r in results if r.name.startswith("keepalived, advert_int 1")), None)
    print("\nhard kill of the VIP's node, outage (median, min-max):")
    for r in results:
        ratio = (
            f"  x{statistics.median(r.outages) / statistics.median(baseline.outages):.2f} of keepalived"
            if baseline and r.outages and baseline.outages
            else ""
        )
        beyond = (
            f"; median beyond detection (2.2 x token {r.token_ms} ms): "
            f"{statistics.median(r.outages) - 2.2 * r.token_ms / 1000:.2f} s"
            if r.token_ms and r.outages
            else ""
        )
        if r.detections:
            beyond += f"; detection measured: {figures(r.detections)}"
        if r.killed_dc:
            beyond += f"; the DC was killed in {sum(r.killed_dc)} of {len(r.killed_dc)}"
        if r.outages_every_50ms:
            beyond += f"; probed every 50 ms: {figures(r.outages_every_50ms)}"
        if r.reformed_before:
            beyond += (
                f"; ring re-formed {sum(r.reformed_before)} times with nobody lost in the {JOURNAL_BEFORE_S} s "
                "before each kill, all kills together"
            )
        if r.cpu_windows:
            beyond += "; from lost to VIP started: " + cpu_summary(r.cpu_windows)
        print(f"  {r.name:32} {figures(r.outages)}{ratio}{beyond}")
    print("planned switchover (pcs node standby):")
    for r in results:
        if r.switchovers:
            print(f"  {r.name:32} {figures(r.switchovers)}")
    print("bare nodes to VIP serving:")
    for r in results:
        if r.bring_up_s is not None:
            slow = sorted(r.steps.items(), key=lambda kv: -kv[1])[:3]
            print(f"  {r.name:32} {r.bring_up_s:.1f} s; slowest steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in slow))
    stem = "failover" if a.nodes == 2 and a.fencing == "off" else f"failover-{a.nodes}-nodes-fencing-{a.fencing}"
    (OUT / f"{stem}.json").write_text(json.dumps([asdict(r) for r in results], indent=1))
    timeline_png(results, OUT / f"{stem}-timeline.png")
    print(f"\nwrote {OUT / f'{stem}.json'} and {OUT / f'{stem}-timeline.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
