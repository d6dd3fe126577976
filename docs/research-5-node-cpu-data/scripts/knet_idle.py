"""5-node fast lab at idle: membership changes and knet link flaps, before and after a longer knet ping timeout (scratch)."""
import sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the project root
from lab import operations as ops
from bench.failover import settle

idle = float(sys.argv[1]); timeout = sys.argv[2]; interval = sys.argv[3]
work = Path("/tmp/an/work"); work.mkdir(exist_ok=True)
stack = ops.lab_stack(work, "prof", nodes=int(sys.argv[4]), cluster={"profile": "fast", "stonith": False}, image="baked")
ctx = ops.context(stack, state_dir=work / "lab", log=lambda _: None)
names = [n.name for n in ctx.settings.node_list]
def counts():
    out = {}
    for n in names:
        ok, j = ctx.on(n, "journalctl -u corosync --no-pager -q", 30)
        out[n] = (j.count("A new membership"), j.count("is down"), j.count("Token has not been received"))
    return out
def window(label):
    a = counts(); time.sleep(idle); b = counts()
    m = sum(b[n][0]-a[n][0] for n in names); d = sum(b[n][1]-a[n][1] for n in names); t = sum(b[n][2]-a[n][2] for n in names)
    print(f"{label}: {idle:.0f} s idle: membership lines {m}, knet link-down lines {d}, token warnings {t}", flush=True)
try:
    print("bring-up", ops.up(ctx), flush=True)
    settle(ctx)
    ok, out = ctx.on(names[0], "corosync-cmapctl | grep -E 'knet_ping_(timeout|interval)'", 15); print(out.strip())
    window("defaults")
finally:
    ops.down(ctx, run_deletes=False)
