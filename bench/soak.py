"""Idle soak: does a profile keep quorum and the VIP where it is, with no spurious failover, for N minutes?

    sudo .venv/bin/python -m bench.soak [--minutes 10] [--token-ms 500] [--placement everywhere] [--nodes 2]
        [--image cloud|baked] [--knet-ping stack|corosync-default]

Brings up a lab of `--nodes` nodes with the given totem token and placement, then, every 5 s for the whole soak:
every node online with quorum, the VIP on the same node, the stats page answering on the VIP. Counts, in every node's
corosync journal, new memberships (lines: each node logs each one), knet links marked down and token warnings.
Prints what it saw. `--knet-ping corosync-default` first takes the stack's knet ping options out of corosync.conf
on the running cluster (as a cluster made before the stack set them runs: timeout token / 2).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from components import pcs
from components.plan import COROSYNC_CONF, knet_link_edit, q
from lab import operations as ops

# What each node's corosync logs: a ring re-formed, a knet link declared dead, a token late.
JOURNAL_COUNTS = {
    "membership lines": "A new membership",
    "knet link-down lines": "is down",
    "token warnings": "Token has not been received",
}
KNET_KEYS = tuple(f"runtime.config.totem.interface.0.knet_ping_{k}" for k in ("interval", "timeout"))


def journal_counts(ctx: ops.LabContext, names: set[str]) -> dict[str, int]:
    totals = dict.fromkeys(JOURNAL_COUNTS, 0)
    for n in names:
        ok, journal = ctx.on(n, "journalctl -u corosync --no-pager -q", 30)
        if not ok:
            raise RuntimeError(f"{n}: corosync's journal: {journal}")
        for what, line in JOURNAL_COUNTS.items():
            totals[what] += journal.count(line)
    return totals


def knet_ping(ctx: ops.LabContext, node: str) -> str:
    ok, out = ctx.on(node, "corosync-cmapctl runtime.config.totem.interface.0.", 30)  # the keys under the prefix
    if not ok:
        raise RuntimeError(f"{node}: corosync-cmapctl: {out}")
    values = dict(line.split(" = ", 1) for line in out.splitlines() if " = " in line)
    got = [values.get(f"{k} (u32)", "?") for k in KNET_KEYS]
    return f"knet ping interval {got[0]} ms, timeout {got[1]} ms"


def corosync_default_knet_ping(ctx: ops.LabContext, node: str, token_ms: int) -> None:
    """The totem step's delete, less the token: corosync.conf without knet ping options, sent and reloaded."""
    edit = knet_link_edit(None, "exit 1")
    script = f"set -euo pipefail\n{edit}{q(pcs.totem_update(token_ms))}\n{q(pcs.corosync_reload())}\n"
    ok, out = ctx.on(node, f"bash -c {q([script])}", 60)
    if not ok:
        raise RuntimeError(f"{node}: taking knet's ping options out of {COROSYNC_CONF}: {out}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--token-ms", type=int, default=500)
    p.add_argument("--placement", default="everywhere", choices=["with-vip", "everywhere"])
    p.add_argument("--nodes", type=int, default=2)
    p.add_argument("--image", choices=ops.IMAGES, default="cloud", help="baked: nodes boot with the packages in")
    p.add_argument("--knet-ping", choices=["stack", "corosync-default"], default="stack")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ha-lb-soak-") as tmp:
        cluster = {"tokenMs": a.token_ms, "placement": a.placement}
        stack = ops.lab_stack(Path(tmp), "soak", nodes=a.nodes, cluster=cluster, image=a.image)
        ctx = ops.context(stack, state_dir=Path(tmp) / "lab", log=lambda _: None)
        try:
            ops.up(ctx)
            names = {n.name for n in ctx.settings.node_list}
            ops.wait_for("nodes online", lambda: ops.node_states(ctx) == dict.fromkeys(names, True), 120)
            first = sorted(names)[0]
            if a.knet_ping == "corosync-default":
                corosync_default_knet_ping(ctx, first, a.token_ms)
                time.sleep(3)  # the reload, then the ring settles
            knet = knet_ping(ctx, first)
            home = ops.vip_node(ctx)
            before = journal_counts(ctx, names)
            checks = moved = offline = unserved = 0
            end = time.monotonic() + a.minutes * 60
            while time.monotonic() < end:
                checks += 1
                states = ops.node_states(ctx)
                offline += states != dict.fromkeys(names, True)
                moved += ops.vip_node(ctx) != home
                unserved += ops.http_status(ctx.lab.netns, ops.stats_url(ctx), ops.stats_auth(ctx)) != 200
                time.sleep(5)
            after = journal_counts(ctx, names)
            seen = {what: after[what] - before[what] for what in JOURNAL_COUNTS}
        finally:
            ops.down(ctx, run_deletes=False)
    journal = ", ".join(f"{what} {n}" for what, n in seen.items())
    print(f"soak {a.minutes:g} min, {a.nodes} nodes, token {a.token_ms} ms, {knet}, {a.placement}: {checks} checks; "
          f"VIP moved in {moved}, a node offline in {offline}, stats page unanswered in {unserved}; "
          f"in corosync's journals (all nodes): {journal}")  # fmt: skip
    return 0 if moved == offline == unserved == seen["membership lines"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
