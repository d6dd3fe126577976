"""Fencing benchmark on the lab: the VIP's node hangs (processes frozen, its kernel still answering ARP for the VIP).

    sudo .venv/bin/python -m bench.fencing [--runs 3] [--hold 30]

Two setups on a 2-node lab (HAProxy with the VIP): fencing on (the stack's fence_ipmilan against the lab's BMCs)
and off (`cluster.stonith: false`). Each run freezes the VIP's node for `--hold` seconds (fencing on: until it is
fenced and back), probing the stats page through the VIP every 50 ms and sampling every ~100 ms who holds the VIP
(ARP answers on the bridge, and the VIP configured in each running node's kernel). Prints the outage and how long
two nodes held the VIP at once (median, min-max), and for fencing on where the outage goes, from the survivor's
journal: membership lost, priority-fencing-delay, the fence (reboot through the BMC), the VIP's start. Writes
bench/out/fencing.json. Figures, never assertions: the e2e tests prove behaviour, this measures it.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.failover import figures
from lab import operations as ops

OUT = Path(__file__).resolve().parent / "out"
SETUPS: dict[str, dict[str, Any]] = {"fencing on": {}, "fencing off": {"stonith": False}}


@dataclass
class Result:
    name: str
    outages: list[float] = field(default_factory=list)
    duplicates: list[float] = field(default_factory=list)
    phases: list[dict[str, float]] = field(default_factory=list)


def settle(ctx: ops.LabContext, timeout: float = 180) -> str:
    names = {n.name for n in ctx.settings.node_list}

    def online() -> bool:
        ops.rejoin_after_self_fence_notice(ctx)  # a lab node can boot faster than its fence reports (ops)
        return ops.all_online_everywhere(ctx, names)

    ops.wait_for("every node online", online, timeout, 1)
    ops.wait_for("the VIP on one node", lambda: len(ops.resource_nodes(ctx).get("vip", ())) == 1, 60, 0.5)
    (home,) = ops.resource_nodes(ctx)["vip"]
    return home


_STAMP = re.compile(r"^(\w{3} +\d+ \d\d:\d\d:\d\d\.\d+) ")


def _when(line: str) -> float | None:
    m = _STAMP.match(line)
    if m is None:
        return None
    stamp = datetime.strptime(f"{datetime.now().year} {m.group(1)}", "%Y %b %d %H:%M:%S.%f")
    return stamp.timestamp()


def phases(lines: list[str], node: str, hung_at: float) -> dict[str, float]:
    """Seconds after the hang at which the survivor's journal shows each step."""
    marks = {
        "membership lost": f"Node {node} state is now lost",
        "fence requested": f"Requesting fencing (reboot) of node {node}",
        "fence done": f"Operation 'reboot' targeting {node}",
        "VIP started": "Result of start operation for vip",
    }
    out: dict[str, float] = {}
    for line in lines:
        at = _when(line)
        for name, text in marks.items():
            if at is not None and name not in out and text in line:
                out[name] = round(at - hung_at, 2)
    return out


def hung_run(ctx: ops.LabContext, hold: float) -> tuple[float, float, dict[str, float]]:
    home = settle(ctx)
    survivors = [n.name for n in ctx.settings.node_list if n.name != home]
    before = ctx.lab.containers.init_pid(home)
    fencing = ctx.settings.stonith_enabled
    watch = ops.VipWatch(ctx)
    try:

        def moved() -> bool:
            fenced = ctx.lab.containers.init_pid(home) != before
            return (fenced or not fencing) and any(ops.vip_on(ctx, n) for n in survivors)

        outage, _, at = ops.measure_outage(ctx, lambda: ops.hang(ctx, home), moved, timeout=150)
        if time.time() < at + hold:
            time.sleep(at + hold - time.time())
        ops.unhang(ctx, home)
        settle(ctx)  # still watching: without fencing, two hold the VIP until the cluster sorts it out after the thaw
    finally:
        ops.unhang(ctx, home)
        watch.stop()
    lines = ops.fencing_journal(ctx, survivors[0], at) if fencing else []
    return outage.seconds, watch.duplicate_seconds(), phases(lines, home, at)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fencing", description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--hold", type=float, default=30, help="seconds the VIP's node stays frozen (unless fenced)")
    p.add_argument("--setups", nargs="*", default=list(SETUPS), choices=list(SETUPS))
    a = p.parse_args(argv)
    results = []
    for name in a.setups:
        result = Result(name)
        with tempfile.TemporaryDirectory(prefix="ha-lb-bench-") as tmp:
            stack = ops.lab_stack(Path(tmp), "fencebench", nodes=2, cluster={"placement": "with-vip", **SETUPS[name]})
            ctx = ops.context(stack, state_dir=Path(tmp) / "lab", log=lambda _: None)
            try:
                ops.up(ctx)
                for i in range(a.runs):
                    outage, duplicate, steps = hung_run(ctx, a.hold)
                    result.outages.append(outage)
                    result.duplicates.append(duplicate)
                    result.phases.append(steps)
                    print(f"  {name}: run {i + 1}/{a.runs}: outage {outage:.2f} s, duplicate VIP {duplicate:.2f} s"
                          + (f", {steps}" if steps else ""), flush=True)  # fmt: skip
            finally:
                ops.down(ctx, run_deletes=False)
        results.append(result)
    print(f"\nVIP's node hung ({a.hold:g} s unless fenced), 2 nodes, HAProxy with the VIP:")
    print(f"{'setup':<14} {'outage':<32} duplicate VIP")
    for r in results:
        print(f"{r.name:<14} {figures(r.outages):<32} {figures(r.duplicates)}")
    for r in results:
        if any(r.phases):
            keys = sorted({k for ph in r.phases for k in ph}, key=lambda k: statistics.median(
                [ph[k] for ph in r.phases if k in ph]))  # fmt: skip
            print(f"{r.name}, s after the hang (median): " + ", ".join(
                f"{k} {statistics.median([ph[k] for ph in r.phases if k in ph]):.2f}" for k in keys))  # fmt: skip
    OUT.mkdir(exist_ok=True)
    (OUT / "fencing.json").write_text(json.dumps([asdict(r) for r in results], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
