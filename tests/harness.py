"""Run the real program (`__main__.py`) under Pulumi's mock engine and record what it registers.

The mock monitor is the engine: it honours `depends_on` ordering and hands mocks resolved inputs. Recording at
the monitor level also sees what `MockResourceArgs` lacks: parent, dependencies and resource options.
"""

from __future__ import annotations

import json
import runpy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pulumi
import yaml
from pulumi.runtime import mocks as pmocks
from pulumi.runtime import rpc
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parent.parent
MAIN = ROOT / "__main__.py"
PROJECT = "ha-lb"

MOCK_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMockMockMockMockMockMockMockMockMockMockMock ha-lb-generated"
MOCK_PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nbW9jay1wcml2YXRlLWtleQ==\n-----END OPENSSH PRIVATE KEY-----\n"


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    parent: str
    dependencies: list[str]
    inputs: dict[str, Any]
    """Deserialized inputs; secrets stay wrapped (see `is_secret`)."""
    delete_before_replace: bool
    deleted_with: str
    additional_secret_outputs: list[str]


def is_secret(value: Any) -> bool:
    return bool(rpc.is_rpc_secret(value))


def unwrap(value: Any) -> Any:
    """A value with every secret marker removed, recursively."""
    if rpc.is_rpc_secret(value):
        return unwrap(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


class ProgramMocks(pulumi.runtime.Mocks):
    """Provider stand-ins: ids from names, generated secrets with recognisable values."""

    def __init__(
        self, unknown_ids: bool = False, on_resource: Optional[Callable[[pmocks.MockResourceArgs], None]] = None
    ):
        self.unknown_ids = unknown_ids
        self.on_resource = on_resource

    def new_resource(self, args: pmocks.MockResourceArgs) -> tuple[Optional[str], dict[Any, Any]]:
        if self.on_resource is not None:
            self.on_resource(args)
        state = dict(args.inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = f"Gen{args.name.replace('-', '')}Pw0"
        elif args.typ == "tls:index/privateKey:PrivateKey":
            state["privateKeyOpenssh"] = MOCK_PRIVATE_KEY
            state["publicKeyOpenssh"] = MOCK_PUBLIC_KEY
        elif args.typ == "command:remote:Command":
            state["stdout"] = ""
            state["stderr"] = ""
        if self.unknown_ids:
            return None, state
        return f"{args.name}-id", state

    def call(self, args: pmocks.MockCallArgs) -> tuple[dict[Any, Any], Optional[list[tuple[str, str]]]]:
        if args.token == "tls:index/getPublicKey:getPublicKey":
            return {
                "publicKeyOpenssh": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDerivedDerivedDerivedDerivedDerived derived"
            }, []
        raise NotImplementedError(args.token)


class RecordingMonitor(pmocks.MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self.stack_outputs: dict[str, Any] = {}

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.registrations.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent=request.parent,
                    dependencies=list(request.dependencies),
                    inputs=rpc.deserialize_properties(request.object, keep_unknowns=True),
                    delete_before_replace=request.deleteBeforeReplace,
                    deleted_with=request.deletedWith,
                    additional_secret_outputs=list(request.additionalSecretOutputs),
                )
            )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        if request.urn.split("::")[2] == "pulumi:pulumi:Stack":
            self.stack_outputs = rpc.deserialize_properties(request.outputs, keep_unknowns=True)
        return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]


@dataclass
class ProgramRun:
    registrations: list[Registration]
    outputs: dict[str, Any]
    error: Optional[BaseException]
    by_urn: dict[str, Registration] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_urn = {r.urn: r for r in self.registrations}

    def of_type(self, typ: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == typ]

    def named(self, name: str) -> Registration:
        (match,) = [r for r in self.registrations if r.name == name]
        return match

    def dependency_names(self, reg: Registration) -> set[str]:
        return {self.by_urn[u].name for u in reg.dependencies if u in self.by_urn}


def stack_config(stack_file: Path) -> dict[str, Any]:
    """The `config:` block of a Pulumi.<stack>.yaml file."""
    return dict(yaml.safe_load(stack_file.read_text())["config"])


def to_runtime_config(config: Mapping[str, Any]) -> dict[str, str]:
    """Config as the engine hands it to a program: strings, with structured values as JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def run_program(
    config: Mapping[str, Any],
    secret_keys: Iterable[str] = (),
    preview: bool = False,
    mocks: Optional[ProgramMocks] = None,
    stack: str = "test",
) -> ProgramRun:
    """Evaluate `__main__.py` with this config; errors are returned, not raised, so tests can assert on them."""
    mocks = mocks or ProgramMocks()
    pulumi.runtime.settings.reset_options()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor)
    pulumi.runtime.set_all_config(to_runtime_config(config), list(secret_keys))
    # set_mocks made a finished root stack; the program gets a fresh one, as under the language host.
    pulumi.runtime.settings.ROOT.set(None)
    error: Optional[BaseException] = None

    def program() -> None:
        runpy.run_path(str(MAIN), run_name="__main__")

    try:
        # As the Python language host runs a program: inside a root Stack resource that collects the exports.
        _sync_await(run_in_stack(program))
    except BaseException as exc:
        error = exc
    return ProgramRun(monitor.registrations, monitor.stack_outputs, error)
