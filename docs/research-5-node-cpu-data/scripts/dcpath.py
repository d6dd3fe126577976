"""The DC's journal around 5-node fast kills: each step's time after the kill (scratch)."""
import sys, time, re
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the project root
from lab import operations as ops
from bench.failover import settle, reboot_dead_nodes
from bench.journal import when

nodes = int(sys.argv[1]); runs = int(sys.argv[2])
work = Path("/tmp/an/work"); work.mkdir(exist_ok=True)
stack = ops.lab_stack(work, "prof", nodes=nodes, cluster={"profile": "fast", "stonith": False}, image="baked")
ctx = ops.context(stack, state_dir=work / "lab", log=lambda _: None)
MARKS = ["state is now lost", "Node failure", "Calculated transition", "saving inputs", "Processing graph", "Initiating start operation vip", "Requesting local execution of start", "Result of start operation for vip", "Transition", "Re-asking", "join", "Delet", "abort"]
try:
    print("bring-up", ops.up(ctx), flush=True)
    settle(ctx)
    for i in range(runs):
        home = ops.vip_node(ctx); dc = ops.dc_node(ctx)
        outage, samples, at = ops.measure_outage(ctx, lambda: ctx.lab.containers.kill(home))
        vip = ops.vip_node(ctx)
        print(f"kill {i}: {home} (DC {dc}) outage {outage.seconds:.3f}, VIP now on {vip}", flush=True)
        for node in sorted({dc, vip}):
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at - 1))
            ok, out = ctx.on(node, f"journalctl -u pacemaker --no-pager -o short-precise --since '{stamp}'", timeout=30)
            for line in out.splitlines():
                t = when(line)
                if t is None or t < at or t > at + 1.6: continue
                if any(m in line for m in MARKS):
                    print(f"  {node} {t-at:.4f} {line.split(']: ',1)[-1][:150]}")
        reboot_dead_nodes(ctx); settle(ctx)
finally:
    ops.down(ctx, run_deletes=False)
