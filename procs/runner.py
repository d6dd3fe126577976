"""Running processes: argv lists, no shell, output captured. Injected wherever a process runs."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 6) -> str:
        """The last lines of the output, for a one-line report."""
        text = (self.stdout + self.stderr).strip().splitlines()
        return " | ".join(text[-lines:])


class Runner(Protocol):
    def __call__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
        cwd: Path | None = None,
        timeout: float = 300,
    ) -> Completed: ...


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
) -> Completed:
    proc = subprocess.run(
        list(argv),
        env=None if env is None else dict(env),
        input=stdin,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Completed(tuple(argv), proc.returncode, proc.stdout, proc.stderr)
