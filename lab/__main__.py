"""python -m lab {up,status,failover,fence,hang,unhang,isolate,reconnect,cut-bmc,restore-bmcs,down}: the program's
real resources on real nodes here.

No hypervisor needed: nodes are systemd-nspawn containers booting a Debian 12 image, inside a network namespace of
the lab's own. Needs root and Debian's tools (scripts/setup).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from components.settings import SettingsError

from . import operations as ops


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab", description=__doc__.splitlines()[0])
    p.add_argument("--stack", type=Path, default=ops.DEFAULT_STACK, help="stack file (default: Pulumi.lab.yaml)")
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="boot the nodes and apply the stack (safe to run again)")
    up.add_argument("--rerun", action="store_true", help="run every step's create again, even unchanged ones")
    sub.add_parser("status", help="pcs status, where the VIP is, the stats page through the VIP")
    sub.add_parser("failover", help="hard-kill the VIP's node and report the outage")
    fence = sub.add_parser("fence", help="fence a node through the cluster (stonith_admin on another node)")
    fence.add_argument("node")
    fence.add_argument("--off", action="store_true", help="power it off and leave it off (default: reboot)")
    for name, what in (("hang", "freeze a node: processes stopped, kernel answering"), ("unhang", "thaw it")):
        sub.add_parser(name, help=what).add_argument("node")
    sub.add_parser(
        "isolate", help="cut a node's cluster link to every other node (clients still reach it)"
    ).add_argument("node")
    sub.add_parser("reconnect", help="restore every cluster link cut by `isolate`")
    sub.add_parser("cut-bmc", help="make a node's BMC unreachable (its fencing then fails)").add_argument("node")
    sub.add_parser("restore-bmcs", help="make every BMC reachable again")
    down = sub.add_parser("down", help="run the deletes, stop the nodes, remove the namespace and mounts")
    down.add_argument("--fast", action="store_true", help="skip the deletes (as `pulumi destroy` does with the VMs)")
    a = p.parse_args(argv)
    try:
        ctx = ops.context(a.stack)
    except SettingsError as err:
        print(err, file=sys.stderr)
        return 2
    try:
        if a.command == "up":
            ops.up(ctx, rerun=a.rerun)
            return ops.status(ctx)
        if a.command == "status":
            return ops.status(ctx)
        if a.command == "failover":
            ops.failover(ctx)
            return 0
        if a.command == "fence":
            result = ops.fence(ctx, a.node, "off" if a.off else "reboot")
            return 0 if result.went_off else 1
        # Failures the lab makes and undoes: nothing to report but an error.
        on_node = {"hang": ops.hang, "unhang": ops.unhang, "isolate": ops.cut_cluster_link, "cut-bmc": ops.cut_bmc}
        on_lab = {"reconnect": ops.restore_cluster_link, "restore-bmcs": ops.restore_bmcs}
        if a.command in on_node:
            on_node[a.command](ctx, a.node)
            return 0
        if a.command in on_lab:
            on_lab[a.command](ctx)
            return 0
        failures = ops.down(ctx, run_deletes=not a.fast)
        for f in failures:
            print(f"delete failed: {f}", file=sys.stderr)
        return 1 if failures else 0
    except (RuntimeError, TimeoutError) as err:
        print(f"lab {a.command}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
