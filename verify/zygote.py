"""Starting and stopping the pcs zygote (`pcs_server.py`)."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

SERVER = Path(__file__).resolve().parent / "pcs_server.py"


class PcsZygote:
    """A running pcs zygote; `socket` goes in HA_LB_PCS_SOCKET. Stopped by pid on exit."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="ha-lb-pcs-")
        self.socket = str(Path(self._dir.name) / "pcs.sock")
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PcsZygote:
        self._proc = subprocess.Popen(["/usr/bin/python3", "-I", str(SERVER), self.socket])
        deadline = time.monotonic() + 30
        while not Path(self.socket).exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the pcs zygote did not start (is pcs installed? run scripts/setup)")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._dir.cleanup()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
