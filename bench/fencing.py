"""Fencing benchmark on the lab: a hung node, a cut link, an unreachable BMC; fencing on, off, and keepalived.

    sudo .venv/bin/python -m bench.fencing [--runs 5] [--hold 20] [--nodes 2] [--placement P]
                                           [--scenarios hung cut bmc] [--setups NAME ...]

One lab of `--nodes` nodes per setup: fencing on (the stack's fence_ipmilan against the lab's BMCs), off
(`cluster.stonith: false`), on 2 nodes keepalived (`advert_int 1`: the Pacemaker cluster stopped, keepalived
and HAProxy on both nodes, the same VIP), and fencing on with a quorum device (an arbiter VM running corosync-qnetd,
`cluster.quorumDevice`). Scenarios, each held `--hold` seconds: the VIP's node hung (processes
frozen, its kernel still answering ARP for the VIP; fencing on: until it is fenced and back); the cluster link cut
while clients reach every node (corosync's UDP 5405 dropped on the bridge, VRRP for keepalived; on 2 nodes between
them, on more the VIP's node cut off from the rest); and, fencing on only, the VIP's node hung while its BMC does
not answer, until the hold ends. Each run probes the stats page through the VIP every 10 ms and samples every
~100 ms who holds the VIP (ARP answers on the bridge, and the VIP configured in each node's kernel), from a settled
lab until it has settled again. Prints per scenario and setup the outage (the longest gap in service from the hang
or cut until the thaw or restore; for the BMC, the whole gap), the longest gap after that (for the BMC: from its
return to service), how long two nodes held the VIP at once, which node was fenced, and for fencing on where the
time goes (the survivor's journal) and what the outage has beyond the VIP's start (the issue's bound: at most
0.5 s). Writes bench/out/fencing-<N>-nodes.json. Figures, never assertions: the e2e tests prove behaviour, this
measures it."""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from bench.failover import figures, switch_to_keepalived
from bench.journal import journal, phases
from lab import operations as ops
from lab.probe import Sample

OUT = Path(__file__).resolve().parent / "out"
SCENARIOS = {
    "hung": "VIP's node hung",
    "cut": "cluster link cut, clients reach every node (2 nodes: between them; more: the VIP's node cut off)",
    "bmc": "VIP's node hung, its BMC unreachable until the hold ends (fencing on only; after: BMC back to serving)",
}
KEEPALIVED = "keepalived advert_int 1"
SETUPS: dict[str, dict[str, Any]] = {
    "fencing on": {},
    "fencing off": {"stonith": False},
    KEEPALIVED: {"stonith": False},  # its lab's cluster is stopped: no fencing device to prove at `up`
    # Fencing on, and an arbiter VM's vote (on the lab's network, Pulumi.lab.yaml): no priority-fencing-delay.
    "quorum device": {"quorumDevice": {"address": "192.168.100.50", "name": "arbiter"}},
}
SLACK = 0.5
"""The issue's bound: the outage is at most detection + the fence + the VIP's start + this many seconds."""


@dataclass
class Run:
    outage: float
    """The longest gap between answered probes (by completion) from the hang or cut until the thaw or restore."""
    after: float
    """The longest gap from the thaw or restore until the lab has settled."""
    duplicate: float
    """Seconds two nodes held the VIP at once (`ops.VipWatch`)."""
    fenced: list[str] = field(default_factory=list)
    """The nodes fenced (their container rebooted) by role: "VIP's node", "other node"."""
    marks: dict[str, float] = field(default_factory=dict)
    """Fencing on: seconds after the hang or cut at which the survivor's journal shows each step (`phases`)."""
    slack: float | None = None
    """Fencing on, the VIP moved: what the outage has beyond the VIP's start (`slack`)."""


@dataclass
class Result:
    scenario: str
    setup: str
    runs: list[Run] = field(default_factory=list)


def slack(outage: float, marks: dict[str, float]) -> float | None:
    """What the outage has beyond the VIP's start (None: the VIP did not start). Detection, the fence (with
    priority-fencing-delay) and the VIP's start all lie before that mark, so the issue's bound holds while this is at
    most `SLACK`; HAProxy's start, ordered after the VIP's, is part of it."""
    return None if "VIP started" not in marks else round(outage - marks["VIP started"], 2)


def longest_gap(samples: list[Sample], start: float, end: float = math.inf) -> float | None:
    """The longest gap between answered probes (by completion) that begins at or after the last answer before
    `start`, and before `end` (None: no answer on one side of `start`)."""
    oks = sorted(s.end for s in samples if s.ok)
    before = [t for t in oks if t <= start]
    after = [t for t in oks if t > start]
    if not before or not after:
        return None
    return max(b - a for a, b in itertools.pairwise([before[-1], *after]) if a < end)


def notes(runs: list[Run]) -> str:
    """Who was fenced in how many runs, the phases' medians, and the slack over the VIP's start against the bound."""
    parts = []
    fenced = Counter(" and ".join(run.fenced) or "nobody" for run in runs)
    if set(fenced) != {"nobody"}:
        parts.append("fenced: " + ", ".join(f"{who} {n}/{len(runs)}" for who, n in sorted(fenced.items())))
    keys = {k for run in runs for k in run.marks}
    medians = sorted((statistics.median(run.marks[k] for run in runs if k in run.marks), k) for k in keys)
    if medians:
        parts.append("s after (median): " + ", ".join(f"{k} {v:.2f}" for v, k in medians))
    slacks = [run.slack for run in runs if run.slack is not None]
    if slacks:
        held = sum(s <= SLACK for s in slacks)
        parts.append(f"beyond the VIP's start {figures(slacks)}, <= {SLACK} s in {held}/{len(slacks)}")
    return "; ".join(parts) or "-"


def describe(run: Run) -> str:
    """One run on one line."""
    out = f"outage {run.outage:.2f} s, after {run.after:.2f} s, duplicate VIP {run.duplicate:.2f} s"
    out += f", fenced: {' and '.join(run.fenced) or 'nobody'}"
    if run.slack is not None:
        out += f", beyond the VIP's start {run.slack:.2f} s ({'<=' if run.slack <= SLACK else 'MORE than'} {SLACK} s)"
    return out + (f", {run.marks}" if run.marks else "")


def vip_holders(ctx: ops.LabContext) -> list[str]:
    """The nodes whose kernel has the VIP configured (a frozen node's too)."""
    return [n.name for n in ctx.settings.node_list if ops.vip_on(ctx, n.name)]


def settle(ctx: ops.LabContext, keepalived: bool, timeout: float = 180) -> str:
    """Every node back (Pacemaker: online in every node's view) and the VIP on one node; returns that node."""
    if keepalived:
        ops.wait_for("the VIP on one node", lambda: len(vip_holders(ctx)) == 1, timeout, 0.2)
        (home,) = vip_holders(ctx)
        return home
    return ops.settled_vip_node(ctx, timeout)


def run_once(ctx: ops.LabContext, scenario: str, hold: float, keepalived: bool) -> Run:
    """One hang, cut or unreachable BMC of `hold` seconds (a hung node fenced sooner is not held), probed from a
    settled lab until it has settled again."""
    home = settle(ctx, keepalived)
    others = [n.name for n in ctx.settings.node_list if n.name != home]
    roles = {n: "VIP's node" if n == home else "other node" for n in [home, *others]}
    inits = {n: ctx.lab.containers.init_pid(n) for n in roles}
    fencing = ctx.settings.stonith_enabled and not keepalived
    pair_cut = scenario == "cut" and len(others) == 1
    if scenario == "hung":
        act, undo = partial(ops.hang, ctx, home), partial(ops.unhang, ctx, home)
    elif scenario == "bmc":
        act = partial(_hang_without_bmc, ctx, home)
        undo = partial(_thaw_with_bmc, ctx, home)
    elif keepalived:
        act, undo = partial(ops.cut_vrrp_link, ctx, home, *others), partial(ops.restore_cluster_link, ctx)
    else:
        # Two nodes: the link between them; more: the VIP's node cut off from every other.
        act, undo = partial(ops.cut_cluster_link, ctx, home), partial(ops.restore_cluster_link, ctx)
    survivor, lost = (home, others[0]) if pair_cut else (others[0], home)

    def fenced(node: str) -> bool:
        return ctx.lab.containers.init_pid(node) != inits[node]

    def served() -> bool:
        """The VIP on a node other than the lost one (fencing on: once that is fenced); a cut pair: nothing moves."""
        return pair_cut or ((fenced(home) or not fencing) and any(ops.vip_on(ctx, n) for n in others))

    watch = ops.VipWatch(ctx)
    prober = ops.Prober(ctx.lab.netns, ops.stats_url(ctx), ops.stats_auth(ctx))

    def answered(what: str, count: int = 5) -> None:
        """Wait for `count` probes sent from now on to be answered: service steadily there, not one lucky answer."""
        since = time.time()
        ops.wait_for(what, lambda: sum(s.ok and s.start > since for s in prober.samples()) >= count, 150, 0.1)

    try:
        answered("probes answering through the VIP", 10)
        at = time.time()
        act()
        if scenario == "bmc":
            # Fencing fails while the BMC does not answer: nothing may serve the VIP until it does.
            time.sleep(max(0.0, at + hold - time.time()))
            ops.restore_bmcs(ctx)
            back = time.time()
        ops.wait_for("the VIP serving again", served, 180, 0.1)
        answered("probes answering again")
        if scenario != "bmc":
            time.sleep(max(0.0, at + hold - time.time()))
            back = time.time()
        undo()
        settle(ctx, keepalived)  # still probing and watching: what the thaw or the restore costs counts too
        answered("probes answering once settled")
        time.sleep(0.5)
        samples = prober.samples()
    finally:
        undo()
        prober.stop()
        watch.stop()
    if scenario == "bmc":
        # The outage runs past the BMC's return: what counts after it is how soon the fence and the VIP follow.
        outage = longest_gap(samples, at)
        served_at = min((x.end for x in samples if x.ok and x.end > back), default=None)
        after = None if served_at is None else served_at - back
    else:
        outage, after = longest_gap(samples, at, back), longest_gap(samples, back)
    if outage is None or after is None:
        raise RuntimeError("no answered probe on one side of the hang or cut")
    marks = phases(journal(ctx, survivor, at), lost, at) if fencing else {}
    bound = slack(outage, marks) if scenario != "bmc" else None
    return Run(
        round(outage, 2), round(after, 2), round(watch.duplicate_seconds(), 2),
        [role for node, role in roles.items() if fenced(node)], marks, bound,
    )  # fmt: skip


def _hang_without_bmc(ctx: ops.LabContext, node: str) -> None:
    ops.cut_bmc(ctx, node)
    ops.hang(ctx, node)


def _thaw_with_bmc(ctx: ops.LabContext, node: str) -> None:
    ops.restore_bmcs(ctx)
    ops.unhang(ctx, node)


def bench_setup(
    setup: str, scenarios: list[str], runs: int, hold: float, nodes: int, placement: str | None
) -> list[Result]:
    """Every scenario's runs on one fresh lab of the setup, taken down whatever happens."""
    keepalived = setup == KEEPALIVED
    # An unreachable BMC is a fencing scenario: without fencing it is the hung node again.
    results = [Result(s, setup) for s in scenarios if s != "bmc" or setup == "fencing on"]
    cluster = {**SETUPS[setup], **({"placement": placement} if placement else {})}
    with tempfile.TemporaryDirectory(prefix="ha-lb-bench-") as tmp:
        stack = ops.lab_stack(Path(tmp), "fencebench", nodes=nodes, cluster=cluster)
        ctx = ops.context(stack, state_dir=Path(tmp) / "lab", log=lambda _: None)
        try:
            ops.up(ctx)
            if keepalived:
                switch_to_keepalived(ctx, advert=1)
            for result in results:
                for i in range(runs):
                    run = run_once(ctx, result.scenario, hold, keepalived)
                    result.runs.append(run)
                    print(f"  {setup}, {result.scenario}: run {i + 1}/{runs}: {describe(run)}", flush=True)
        finally:
            ops.down(ctx, run_deletes=False)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fencing", description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--hold", type=float, default=20, help="seconds the node stays frozen (unless fenced) or cut off")
    p.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    p.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    p.add_argument("--nodes", type=int, default=2, help="cluster size (keepalived: 2 only)")
    p.add_argument("--placement", choices=["with-vip", "everywhere"], help="HAProxy's (default: the profile's)")
    a = p.parse_args(argv)
    if a.nodes != 2 and KEEPALIVED in a.setups:
        p.error(f"{KEEPALIVED} is the two-node baseline: leave it out of --setups with --nodes {a.nodes}")
    results = [r for setup in a.setups for r in bench_setup(setup, a.scenarios, a.runs, a.hold, a.nodes, a.placement)]
    placement = a.placement or "the profile's placement"
    for scenario in a.scenarios:
        print(f"\n{SCENARIOS[scenario]} ({a.hold:g} s), {a.nodes} nodes, HAProxy: {placement}:")
        print(f"{'setup':<24} {'outage':<32} {'after the thaw/restore':<32} {'duplicate VIP':<32} notes")
        for r in results:
            if r.scenario == scenario:
                outages, afters = [x.outage for x in r.runs], [x.after for x in r.runs]
                duplicates = [x.duplicate for x in r.runs]
                print(f"{r.setup:<24} {figures(outages):<32} {figures(afters):<32} {figures(duplicates):<32} "
                      f"{notes(r.runs)}")  # fmt: skip
    OUT.mkdir(exist_ok=True)
    (OUT / f"fencing-{a.nodes}-nodes.json").write_text(json.dumps([asdict(r) for r in results], indent=1))
    print(f"\nwrote {OUT / f'fencing-{a.nodes}-nodes.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
