"""A/B: record-pending on the VIP's start op, alternating kills on one 5-node fast lab (scratch)."""
import sys, time, statistics, json
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the project root
from lab import operations as ops
from bench.failover import settle, reboot_dead_nodes
from bench.journal import journal, phases

nodes = int(sys.argv[1]); pairs = int(sys.argv[2])
work = Path("/tmp/an/work"); work.mkdir(exist_ok=True)
stack = ops.lab_stack(work, "prof", nodes=nodes, cluster={"profile": "fast", "stonith": False}, image="baked")
ctx = ops.context(stack, state_dir=work / "lab", log=lambda _: None)
res = {"true": [], "false": []}
try:
    print("bring-up", ops.up(ctx), flush=True)
    settle(ctx)
    for i in range(pairs * 2):
        mode = "false" if i % 2 == 0 else "true"
        first = ctx.settings.first_node.name
        alive = ops.alive_nodes(ctx)
        ok, out = ctx.on(alive[0], f"pcs resource update vip op start interval=0s timeout=20s record-pending={mode}", timeout=60)
        assert ok, out
        time.sleep(2); settle(ctx)
        home = ops.vip_node(ctx)
        outage, samples, at = ops.measure_outage(ctx, lambda: ctx.lab.containers.kill(home))
        survivor = ops.vip_node(ctx)
        ph = phases(journal(ctx, survivor, at), home, at)
        lost = ph.get("membership lost")
        res[mode].append({"outage": outage.seconds, **ph})
        print(f"kill {i} record-pending={mode}: outage {outage.seconds:.3f} lost {lost} vip {ph.get('VIP started')} beyond-lost {outage.seconds - (lost or 0):.3f}", flush=True)
        reboot_dead_nodes(ctx); settle(ctx)
    for mode, rs in res.items():
        o = [r["outage"] for r in rs]; b = [r["outage"] - r.get("membership lost", 0) for r in rs]
        print(f"record-pending={mode}: outage median {statistics.median(o):.3f} ({min(o):.3f}-{max(o):.3f}) beyond 0.88: {statistics.median(o)-0.88:.3f} beyond-lost median {statistics.median(b):.3f}")
finally:
    ops.down(ctx, run_deletes=False)
    Path(f"/tmp/an/ab-{nodes}.json").write_text(json.dumps(res))
