"""Idle soak: does a profile keep quorum and the VIP where it is, with no spurious failover, for N minutes?

    sudo .venv/bin/python -m bench.soak [--minutes 10] [--token-ms 500] [--placement everywhere] [--nodes 2]
        [--image cloud|baked]

Brings up a lab of `--nodes` nodes with the given totem token and placement, then, every 5 s for the whole soak:
every node online with quorum, the VIP on the same node, the stats page answering on the VIP. Counts corosync membership
changes and Pacemaker transitions that moved the VIP. Prints what it saw.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from lab import operations as ops


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--token-ms", type=int, default=500)
    p.add_argument("--placement", default="everywhere", choices=["with-vip", "everywhere"])
    p.add_argument("--nodes", type=int, default=2)
    p.add_argument("--image", choices=ops.IMAGES, default="cloud", help="baked: nodes boot with the packages in")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ha-lb-soak-") as tmp:
        cluster = {"tokenMs": a.token_ms, "placement": a.placement}
        stack = ops.lab_stack(Path(tmp), "soak", nodes=a.nodes, cluster=cluster, image=a.image)
        ctx = ops.context(stack, state_dir=Path(tmp) / "lab", log=lambda _: None)
        try:
            ops.up(ctx)
            names = {n.name for n in ctx.settings.node_list}
            ops.wait_for("nodes online", lambda: ops.node_states(ctx) == dict.fromkeys(names, True), 120)
            home = ops.vip_node(ctx)
            memberships = {
                n: ctx.on(n, "journalctl -u corosync --no-pager -q", 30)[1].count("A new membership") for n in names
            }
            checks = moved = offline = unserved = 0
            end = time.monotonic() + a.minutes * 60
            while time.monotonic() < end:
                checks += 1
                states = ops.node_states(ctx)
                offline += states != dict.fromkeys(names, True)
                moved += ops.vip_node(ctx) != home
                unserved += ops.http_status(ctx.lab.netns, ops.stats_url(ctx), ops.stats_auth(ctx)) != 200
                time.sleep(5)
            after = {
                n: ctx.on(n, "journalctl -u corosync --no-pager -q", 30)[1].count("A new membership") for n in names
            }
            changes = sum(after[n] - memberships[n] for n in names)
        finally:
            ops.down(ctx, run_deletes=False)
    print(f"soak {a.minutes:g} min, {a.nodes} nodes, token {a.token_ms} ms, {a.placement}: {checks} checks; "
          f"VIP moved in {moved}, a node offline in {offline}, stats page unanswered in {unserved}; "
          f"corosync membership changes during the soak: {changes}")  # fmt: skip
    return 0 if moved == offline == unserved == changes == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
