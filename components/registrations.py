"""How many resource registrations the program keeps in flight at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import pulumi
from pulumi.runtime.sync_await import _ensure_event_loop

from .settings import MAX_NODES

# The Python SDK sends each registration as a blocking RPC on its event loop's default executor, and the engine
# answers only once the resource is done: what is in flight at once is what that pool holds, min(32, cores + 4)
# threads unless the program says otherwise. When every VM is replaced, each node's replacement waits in the
# engine (in its leave step) for the node before it to rejoin, holding a thread; the joins need threads too. With
# the default pool, 7 nodes on a 2-core machine would hold every thread waiting and nothing could rejoin.
REGISTRATIONS_AT_ONCE = 2 * MAX_NODES + 8

_pool: Optional[ThreadPoolExecutor] = None


def allow_registrations_at_once() -> None:
    """Give the program's event loop a pool of `REGISTRATIONS_AT_ONCE` threads (one pool per process)."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=REGISTRATIONS_AT_ONCE, thread_name_prefix="ha-lb-register")
    _ensure_event_loop().set_default_executor(_pool)  # type: ignore[no-untyped-call]


def parallel_warning(nodes: int) -> Optional[str]:
    """The engine runs at most `--parallel` steps at once (4 x CPUs by default; `PULUMI_PARALLEL`). When every VM
    changes, every node's replacement but one waits in its leave step, each holding one of them, and the one under
    way needs another: with too few, they all wait until the leaves give up."""
    parallel: object = pulumi.runtime.settings.SETTINGS.parallel
    if not isinstance(parallel, int) or isinstance(parallel, bool) or parallel <= 0 or parallel >= nodes + 2:
        return None
    return (
        f"pulumi runs at most {parallel} steps at once (--parallel), too few to replace all {nodes} nodes' VMs in "
        f"one `up` (each waiting node holds one): before a change to every VM (size, image, SSH key), run "
        f"`pulumi up --parallel {2 * nodes + 8}` or set PULUMI_PARALLEL"
    )
