"""Evaluating the real program (`__main__.py`) with a stack's config under Pulumi's mock runtime.

The mock runtime is the engine: it calls `Mocks.new_resource` for each registration once its dependencies are
done, concurrently where they are independent. The lab's mocks realize resources for real; the tests' mocks
record them.
"""

from __future__ import annotations

import json
import runpy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pmocks
from pulumi.runtime import rpc
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parent.parent
MAIN = ROOT / "__main__.py"
PROJECT = "ha-lb"


def to_runtime_config(config: Mapping[str, Any]) -> dict[str, str]:
    """Config as the engine hands it to a program: strings, with structured values as JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


class OutputsMonitor(pmocks.MockMonitor):
    """The mock monitor, keeping the stack's outputs (`pulumi.export`)."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.stack_outputs: dict[str, Any] = {}

    def RegisterResourceOutputs(self, request: Any) -> Any:
        if request.urn.split("::")[2] == "pulumi:pulumi:Stack":
            self.stack_outputs = rpc.deserialize_properties(request.outputs, keep_unknowns=True)
        return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]


def evaluate(
    config: Mapping[str, Any],
    mocks: pulumi.runtime.Mocks,
    monitor: OutputsMonitor,
    *,
    secret_keys: Iterable[str] = (),
    preview: bool = False,
    stack: str = "test",
) -> BaseException | None:
    """Run `__main__.py` once; returns the error it failed with, if any (outputs are on the monitor)."""
    pulumi.runtime.settings.reset_options()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor)
    pulumi.runtime.set_all_config(to_runtime_config(config), list(secret_keys))
    # set_mocks made a finished root stack; the program gets a fresh one, as under the language host.
    pulumi.runtime.settings.ROOT.set(None)

    def program() -> None:
        runpy.run_path(str(MAIN), run_name="__main__")

    try:
        _sync_await(run_in_stack(program))
    except BaseException as exc:
        return exc
    return None


def unwrap(value: Any) -> Any:
    """A value with every secret marker removed, recursively."""
    if rpc.is_rpc_secret(value):
        return unwrap(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value
