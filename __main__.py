"""ha-lb: an HAProxy load balancer with a floating IP on a Pacemaker cluster of libvirt VMs."""

import pulumi

from components.registrations import allow_registrations_at_once, parallel_warning
from components.settings import SettingsError, warnings_for
from components.stack import build_stack
from components.stack_config import load_stack_settings, secret_inputs

try:
    settings = load_stack_settings()
except SettingsError as err:
    # A RunError shows the message alone: every bad key and its fix, before any resource exists.
    raise pulumi.RunError(str(err)) from None
for warning in [*warnings_for(settings), parallel_warning(len(settings.node_list))]:
    if warning:
        pulumi.log.warn(warning)

allow_registrations_at_once()
for key, value in build_stack(settings, secret_inputs(pulumi.Config())).items():
    pulumi.export(key, value)
