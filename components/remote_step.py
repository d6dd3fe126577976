"""One plan step as a `remote.Command`: its node's SSH connection, secret stdin, triggers and delete."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import pulumi
from pulumi_command import remote

from .plan import Step, remote_command, render_script

# SSH may not answer while a node boots and cloud-init creates the admin user: keep dialling for ~10 minutes.
DIAL_ERROR_LIMIT = 120
PER_DIAL_TIMEOUT_S = 5


@dataclass
class SshTarget:
    """How Pulumi reaches a node."""

    host: str
    user: str
    port: int
    private_key: pulumi.Output[str]
    host_key: pulumi.Output[str]
    """The node's SSH host public key: a machine answering with another key is refused (and dialled again)."""

    def connection(self) -> remote.ConnectionArgs:
        return remote.ConnectionArgs(
            host=self.host,
            port=self.port,
            user=self.user,
            private_key=self.private_key,
            host_key=self.host_key,
            dial_error_limit=DIAL_ERROR_LIMIT,
            per_dial_timeout=PER_DIAL_TIMEOUT_S,
        )


@dataclass
class StepOptions:
    parent: pulumi.Resource
    depends_on: Sequence[pulumi.Resource] = ()
    stdin: Optional[pulumi.Output[str]] = None
    """A secret the step reads on stdin."""
    deleted_with: Optional[pulumi.Resource] = None
    """The VM the step lives on: when it goes, the step goes with it without running its delete."""
    extra_triggers: Sequence[pulumi.Input[str]] = field(default_factory=list)


def declare_step(prefix: str, step: Step, target: SshTarget, o: StepOptions) -> remote.Command:
    """Declare `step` as a `remote.Command` named `<prefix>-<step id>`."""
    secret_io = o.stdin is not None
    return remote.Command(
        f"{prefix}-{step.id}",
        connection=target.connection(),
        create=remote_command(render_script(step, creating=True), target.user),
        delete=remote_command(render_script(step, step.delete), target.user) if step.delete else None,
        stdin=o.stdin,
        triggers=[*step.replace_on, *o.extra_triggers],
        # A step fed a secret shows only stderr (our own messages and tools' errors), never its input.
        logging=remote.Logging.STDERR if secret_io else remote.Logging.STDOUT_AND_STDERR,
        add_previous_output_in_env=False,
        opts=pulumi.ResourceOptions(
            parent=o.parent,
            depends_on=list(o.depends_on),
            # pcs ids and node files are reused by a replacement: the old one must go first.
            delete_before_replace=True,
            deleted_with=o.deleted_with,
            additional_secret_outputs=["stdout", "stderr"] if secret_io else None,
        ),
    )
