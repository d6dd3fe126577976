"""Running a remote command as pulumi-command does: one SSH session, stdin fed, dial errors retried."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from procs.runner import Completed, Runner, run

from .nodes import in_netns


@dataclass(frozen=True)
class Connection:
    host: str
    user: str
    port: int
    private_key: str
    dial_error_limit: int = 10
    per_dial_timeout: int = 15
    host_key: str | None = None
    """The only host key accepted (`ssh-ed25519 AAAA...`), as pulumi-command's `host_key`; None accepts any."""


class Ssh:
    """SSH from the lab's driver, inside the lab's network namespace."""

    def __init__(self, key_dir: Path, netns: str, runner: Runner = run) -> None:
        self.key_dir = key_dir
        self.netns = netns
        self.run = runner

    def key_file(self, private_key: str) -> Path:
        path = self.key_dir / f"id-{hashlib.sha256(private_key.encode()).hexdigest()[:12]}"
        if not path.exists():
            self.key_dir.mkdir(parents=True, exist_ok=True)
            # Written whole under a private name, then renamed: concurrent steps never see half a key.
            fd, tmp = tempfile.mkstemp(dir=self.key_dir)
            with os.fdopen(fd, "w") as f:
                f.write(private_key if private_key.endswith("\n") else private_key + "\n")
            os.replace(tmp, path)
        return path

    def host_key_options(self, conn: Connection) -> list[str]:
        """Pin the host key as pulumi-command does (that key, that algorithm only); no pin: accept any."""
        if conn.host_key is None:
            return ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
        host = conn.host if conn.port == 22 else f"[{conn.host}]:{conn.port}"
        entry = f"{host} {conn.host_key.strip()}\n"
        known = self.key_dir / f"known-{hashlib.sha256(entry.encode()).hexdigest()[:12]}"
        if not known.exists():
            self.key_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.key_dir)
            with os.fdopen(fd, "w") as f:
                f.write(entry)
            os.replace(tmp, known)
        algorithm = conn.host_key.split()[0]
        return [
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={known}",
            "-o",
            f"HostKeyAlgorithms={algorithm}",
        ]

    def argv(self, conn: Connection, command: str, connect_timeout: int | None = None) -> list[str]:
        return in_netns(
            self.netns,
            [
                "ssh",
                "-o",
                "LogLevel=ERROR",  # why a dial failed, without the known-hosts chatter
                "-i",
                str(self.key_file(conn.private_key)),
                "-p",
                str(conn.port),
                *self.host_key_options(conn),
                "-o",
                "BatchMode=yes",
                "-o",
                f"ConnectTimeout={connect_timeout or conn.per_dial_timeout}",
                "-o",
                "ServerAliveInterval=5",
                f"{conn.user}@{conn.host}",
                command,
            ],
        )

    def exec(self, conn: Connection, command: str, stdin: str | None = None, timeout: float = 900) -> Completed:
        """Run `command`; a failed dial (ssh's 255 before the command runs) is retried up to the dial limit."""
        attempts = max(1, conn.dial_error_limit)
        for attempt in range(attempts):
            done = self.run(self.argv(conn, command), stdin=stdin, timeout=timeout)
            if done.returncode != 255 or attempt == attempts - 1:
                return done
            time.sleep(retry_delay(attempt))
        raise AssertionError("unreachable")


def retry_delay(attempt: int) -> float:
    """Pause before the next dial, as pulumi-command paces its dials (Pulumi's `retry.Until` defaults: 100 ms, x1.5
    a time, at most 5 s): a node still booting is dialled again quickly, and the program's limit of 120 dials still
    waits about 9 minutes for a slow one."""
    return min(0.1 * 1.5**attempt, 5.0)
