"""HAProxy killed on the VIP's node (the node itself fine): what clients see, side by side.

    sudo .venv/bin/python -m bench.haproxy_kill [--nodes 2] [--runs 5] [--placements with-vip everywhere]

For each placement it brings up a lab with the program, then for each setup, run after run: probes the stats page
on the VIP every 10 ms (timed by completion), SIGKILLs every HAProxy process on the VIP's node (master and worker,
as a crash or the OOM killer would), and waits until service is steady again. Setups:
- `systemd restart`: the program's drop-in (60-ha-lb-restart.conf): systemd starts HAProxy again at once.
- `pacemaker only`: that drop-in removed from every node: Pacemaker's monitor finds HAProxy dead and recovers it
  (in place with `with-vip`; with `everywhere` the VIP may move to a node where it runs).
Between runs the failures are cleaned up (`pcs resource cleanup`) and the next kill waits 12 s (systemd's start
limit: 5 starts in 10 s). Prints the outage (longest gap between answers around the kill) and the failed probes,
median and min-max; writes bench/out/haproxy-kill-<n>-nodes.json. Figures, never assertions.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

from bench.failover import settle
from components.plan import RESTART_DROPIN
from lab import operations as ops
from lab.probe import outage_around

OUT = Path(__file__).resolve().parent / "out"
KILL = "pkill -KILL -x haproxy"
SETUPS = ("systemd restart", "pacemaker only")


@dataclass
class Result:
    placement: str
    setup: str
    nodes: int
    outages: list[float] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    """Failed probes (refused or timed out) from the kill until service was steady again."""
    vip_moved: list[bool] = field(default_factory=list)


def figures(values: list[float] | list[int], unit: str = " s") -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.2f}{unit} ({min(values):.2f}-{max(values):.2f}, n={len(values)})"


def without_restart_dropin(ctx: ops.LabContext) -> None:
    for node in ops.alive_nodes(ctx):
        ok, out = ctx.on(node, f"sh -c 'rm -f {RESTART_DROPIN} && systemctl daemon-reload'", timeout=30)
        assert ok, out


def answered(prober: ops.Prober, since: float, count: int) -> bool:
    return sum(s.ok and s.start > since for s in prober.samples()) >= count


def kill_runs(ctx: ops.LabContext, result: Result, runs: int) -> None:
    any_node = ctx.settings.node_list[0].name
    for i in range(runs):
        settle(ctx)  # every node online, the VIP with HAProxy
        home = ops.vip_node(ctx)
        assert home is not None
        time.sleep(12)  # past systemd's start limit window since the last start
        prober = ops.Prober(ctx.lab.netns, ops.stats_url(ctx), ops.stats_auth(ctx))
        try:
            ops.wait_for("probes answering", partial(answered, prober, 0.0, 10), 30)
            at = time.time()
            ok, out = ctx.on(home, KILL, timeout=15)
            assert ok, out

            ops.wait_for("service steady again", partial(answered, prober, at, 20), 120, 0.1)
            time.sleep(1)
        finally:
            samples = prober.samples()
            prober.stop()
        outage = outage_around(samples, at)
        assert outage is not None
        failed = sum(not s.ok for s in samples if s.start >= at - 0.5)
        moved = ops.vip_node(ctx) != home
        result.outages.append(outage.seconds)
        result.failed.append(failed)
        result.vip_moved.append(moved)
        print(
            f"  {result.placement}, {result.setup}: kill {i + 1}/{runs}: {outage.seconds:.2f} s, {failed} failed"
            f"{', VIP moved' if moved else ''}",
            flush=True,
        )
        ctx.on(any_node, "pcs resource cleanup", timeout=60)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.haproxy_kill", description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=2)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--placements", nargs="*", default=["with-vip", "everywhere"], choices=["with-vip", "everywhere"])
    p.add_argument("--setups", nargs="*", default=list(SETUPS), choices=list(SETUPS))
    p.add_argument("--image", choices=ops.IMAGES, default="cloud", help="baked: nodes boot with the packages in")
    a = p.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="ha-lb-bench-") as tmp:
        for i, placement in enumerate(a.placements):
            work = Path(tmp) / f"p{i}"
            work.mkdir()
            stack = ops.lab_stack(work, "bench", nodes=a.nodes, cluster={"placement": placement}, image=a.image)
            ctx = ops.context(stack, state_dir=work / "lab", log=lambda _: None)
            try:
                ops.up(ctx)
                for setup in a.setups:  # the drop-in first, then without it (removing it needs no new `up`)
                    print(f"== {a.nodes} nodes, {placement}, {setup}", flush=True)
                    if setup == "pacemaker only":
                        without_restart_dropin(ctx)
                    result = Result(placement, setup, a.nodes)
                    kill_runs(ctx, result, a.runs)
                    results.append(result)
            finally:
                ops.down(ctx, run_deletes=False)
    path = OUT / f"haproxy-kill-{a.nodes}-nodes.json"
    path.write_text(json.dumps([asdict(r) for r in results], indent=1))
    print(f"\nHAProxy killed on the VIP's node, {a.nodes} nodes (median, min-max):")
    for r in results:
        print(f"  {r.placement:10} {r.setup:16} outage {figures(r.outages)}, failed probes {figures(r.failed, '')}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
