"""How many resource registrations the program keeps in flight at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Optional

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
