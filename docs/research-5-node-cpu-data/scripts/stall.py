"""5-node fast kills: on a long outage, the DC's and new node's journals in full (scratch)."""
import sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the project root
from lab import operations as ops
from bench.failover import settle, reboot_dead_nodes
from bench.journal import when

runs = int(sys.argv[1])
work = Path("/tmp/an/work"); work.mkdir(exist_ok=True)
stack = ops.lab_stack(work, "prof", nodes=5, cluster={"profile": "fast", "stonith": False}, image="baked")
ctx = ops.context(stack, state_dir=work / "lab", log=lambda _: None)
try:
    print("bring-up", ops.up(ctx), flush=True)
    settle(ctx)
    for i in range(runs):
        home = ops.vip_node(ctx); dc = ops.dc_node(ctx)
        outage, samples, at = ops.measure_outage(ctx, lambda: ctx.lab.containers.kill(home))
        vip = ops.vip_node(ctx)
        print(f"kill {i}: {home} (DC {dc}) outage {outage.seconds:.3f}, VIP now on {vip}", flush=True)
        if outage.seconds > 1.3:
            for node in sorted({dc, vip}):
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at - 2))
                ok, out = ctx.on(node, f"journalctl -u pacemaker -u corosync --no-pager -o short-precise --since '{stamp}'", timeout=30)
                for line in out.splitlines():
                    t = when(line)
                    if t is None or t < at - 1.5 or t > at + 3.5: continue
                    print(f"  {node} {t-at:+.4f} {line.split(']: ',1)[-1][:170]}")
        reboot_dead_nodes(ctx); settle(ctx)
finally:
    ops.down(ctx, run_deletes=False)
