"""Run the real program (`__main__.py`) under Pulumi's mock engine and record what it registers.

The mock monitor is the engine: it honours `depends_on` ordering and hands mocks resolved inputs. Recording at
the monitor level also sees what `MockResourceArgs` lacks: parent, dependencies and resource options.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

import pulumi
from pulumi.runtime import mocks as pmocks
from pulumi.runtime import rpc

from lab.program import ROOT, OutputsMonitor, evaluate, unwrap
from verify.stackfile import stack_config

__all__ = ["ROOT", "ProgramMocks", "ProgramRun", "is_secret", "run_program", "stack_config", "unwrap"]

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
    replace_on_changes: list[str]


def is_secret(value: Any) -> bool:
    return bool(rpc.is_rpc_secret(value))


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


class RecordingMonitor(OutputsMonitor):
    """Records every registration as the engine sees it: parent, dependencies, options and inputs."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []

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
                    replace_on_changes=list(request.replaceOnChanges),
                )
            )
        return response


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


def run_program(
    config: Mapping[str, Any],
    secret_keys: Iterable[str] = (),
    preview: bool = False,
    mocks: Optional[ProgramMocks] = None,
    stack: str = "test",
) -> ProgramRun:
    """Evaluate `__main__.py` with this config; errors are returned, not raised, so tests can assert on them."""
    mocks = mocks or ProgramMocks()
    monitor = RecordingMonitor(mocks)
    error = evaluate(config, mocks, monitor, secret_keys=secret_keys, preview=preview, stack=stack)
    return ProgramRun(monitor.registrations, monitor.stack_outputs, error)
