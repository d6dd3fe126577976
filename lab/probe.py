"""Probing the VIP: a new HTTP request every interval, each on its own thread, timed by completion.

Run inside the lab's network namespace: `python -m lab.probe URL OUT [--interval 0.01] [--timeout 0.5] [--auth
user:password-file]`; writes `start end status` lines to OUT until SIGTERM. A request sent while the VIP is away
waits for ARP and then succeeds: what counts is when it completes.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import signal
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Sample:
    start: float
    end: float
    ok: bool


@dataclass(frozen=True)
class Outage:
    last_ok_before: float
    first_ok_after: float

    @property
    def seconds(self) -> float:
        return self.first_ok_after - self.last_ok_before


def parse_samples(lines: Iterable[str]) -> list[Sample]:
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) == 3:
            out.append(Sample(float(parts[0]), float(parts[1]), parts[2] == "200"))
    return out


def outage_around(samples: Sequence[Sample], event: float) -> Outage | None:
    """The longest gap between successful completions that spans `event` (None until service is back)."""
    oks = sorted(s.end for s in samples if s.ok)
    before = [t for t in oks if t <= event]
    after = [t for t in oks if t > event]
    if not before or not after:
        return None
    gaps = [(b - a, a, b) for a, b in zip([before[-1], *after], after, strict=False)]
    _, start, end = max(gaps)
    return Outage(start, end)


def probe(url: str, out: str, interval: float, timeout: float, auth: str | None) -> None:
    parts = urlsplit(url)
    headers = {"Connection": "close"}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    lock = threading.Lock()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with open(out, "a", buffering=1) as f:

        def one() -> None:
            start = time.time()
            status = 0
            try:
                conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=timeout)
                conn.request("GET", parts.path or "/", headers=headers)
                status = conn.getresponse().status
                conn.close()
            except OSError:
                status = 0
            with lock:
                f.write(f"{start:.4f} {time.time():.4f} {status}\n")

        while not stop.is_set():
            threading.Thread(target=one, daemon=True).start()
            stop.wait(interval)
        time.sleep(timeout)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.probe")
    p.add_argument("url")
    p.add_argument("out")
    p.add_argument("--interval", type=float, default=0.01)
    p.add_argument("--timeout", type=float, default=0.5)
    p.add_argument("--auth-file", help="file holding user:password (kept off the command line)")
    a = p.parse_args(argv)
    auth = Path(a.auth_file).read_text().strip() if a.auth_file else None
    probe(a.url, a.out, a.interval, a.timeout, auth)
    return 0


if __name__ == "__main__":
    sys.exit(main())
