"""Time from bare nodes to the VIP serving, per step, on fresh labs.

    sudo .venv/bin/python -m bench.bringup [--runs 3] [--nodes 2] [--image cloud|baked]

Each run boots fresh nodes (new disks) and applies the lab stack; prints each step's time (median over runs), the
last run's timeline (when each step started and ended: the critical path) and the total from the first resource to
the stats page answering on the VIP. `--image baked`: the nodes boot an image with the packages baked in
(`scripts/bake-image`'s script), `cloud` (the default): cloud-init installs them at first boot. Figures only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from lab import operations as ops


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bringup", description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--nodes", type=int, default=2)
    p.add_argument("--image", choices=ops.IMAGES, default="cloud")
    a = p.parse_args(argv)
    totals: list[float] = []
    steps: dict[str, list[float]] = {}
    for run in range(a.runs):
        with tempfile.TemporaryDirectory(prefix="ha-lb-bringup-") as tmp:
            stack = ops.lab_stack(Path(tmp), "bringup", nodes=a.nodes, image=a.image)
            ctx = ops.context(stack, state_dir=Path(tmp) / "lab", log=lambda _: None)
            try:
                totals.append(ops.up(ctx))
            finally:
                ops.down(ctx, run_deletes=False)
            for step, seconds in ctx.lab.step_seconds.items():
                # Per-node steps are one entry per node: keep the slowest, which is what the next step waits for.
                name = step.removeprefix("cluster-").rstrip("0123456789").rstrip("-")
                steps.setdefault(f"{name}#{run}", []).append(seconds)
            spans = dict(ctx.lab.step_spans)
            print(f"run {run + 1}/{a.runs}: VIP serving {totals[-1]:.1f} s after the first resource", flush=True)
    per_step: dict[str, list[float]] = {}
    for key, values in steps.items():
        per_step.setdefault(key.split("#")[0], []).append(max(values))
    print("\ntimeline of the last run (seconds from the start of the program, step start-end):")
    for name, (start, end) in sorted(spans.items(), key=lambda kv: kv[1]):
        print(f"  {start:6.1f} - {end:6.1f}  {name}")
    print(f"\nbare {a.nodes}-node lab ({a.image} image) to VIP serving: median {statistics.median(totals):.1f} s "
          f"({min(totals):.1f}-{max(totals):.1f}, n={len(totals)})")  # fmt: skip
    print("per step (median over runs; per-node steps: the slowest node):")
    for name, values in sorted(per_step.items(), key=lambda kv: -statistics.median(kv[1])):
        print(f"  {name:34} {statistics.median(values):5.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
