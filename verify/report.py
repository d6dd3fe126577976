"""What the verifier found: one line per check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Check:
    area: str
    """cib, scheduler, corosync, haproxy or cloud-init."""
    name: str
    ok: bool
    detail: str = ""

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.area:<10} {self.name}" + (
            f": {self.detail}" if self.detail else ""
        )


@dataclass
class Report:
    label: str
    checks: list[Check] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    """Parsed results (placements per scenario, corosync config), for tests to assert on."""

    def add(self, area: str, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(area, name, ok, detail))
        return ok

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def text(self) -> str:
        lines = [f"== {self.label}", *(c.line() for c in self.checks)]
        passed = sum(c.ok for c in self.checks)
        lines.append(f"{passed} passed, {len(self.checks) - passed} failed")
        return "\n".join(lines)
