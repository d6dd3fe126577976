"""perf -a over the window of a 5-node fast kill (scratch)."""
import sys, time, threading, subprocess
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the project root
from lab import operations as ops
from bench.failover import settle, reboot_dead_nodes
from bench.journal import journal, phases

nodes = int(sys.argv[1]); runs = int(sys.argv[2]); start = float(sys.argv[3]); length = float(sys.argv[4])
work = Path("/tmp/an/work"); work.mkdir(exist_ok=True)
stack = ops.lab_stack(work, "prof", nodes=nodes, cluster={"profile": "fast", "stonith": False}, image="baked")
ctx = ops.context(stack, state_dir=work / "lab", log=lambda _: None)
try:
    print("bring-up", ops.up(ctx), flush=True)
    settle(ctx)
    for i in range(runs):
        home = ops.vip_node(ctx)
        box = {}
        perf = subprocess.Popen(["perf", "record", "-a", "-g", "-k", "CLOCK_MONOTONIC", "-e", "cpu-clock", "-F", "1999", "-o", f"/tmp/an/kill{i}.data", "--", "sleep", "4"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        def killer(home=home, i=i):
            box["mono"] = time.monotonic()
            ctx.lab.containers.kill(home)
        outage, samples, at = ops.measure_outage(ctx, killer)
        perf.wait()
        survivor = ops.vip_node(ctx)
        ph = phases(journal(ctx, survivor, at), home, at)
        print(f"kill {i}: outage {outage.seconds:.3f} phases {ph} mono {box['mono']:.6f}", flush=True)
        reboot_dead_nodes(ctx); settle(ctx)
finally:
    ops.down(ctx, run_deletes=False)
