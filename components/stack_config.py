"""Reading the stack's config from Pulumi: settings, secrets, and the problems Pulumi's schema cannot catch."""

from __future__ import annotations

import json
from typing import Any, Optional

import pulumi
from pulumi.runtime import config as runtime_config

from .secrets import ClusterSecretsArgs
from .settings import (
    PROJECT,
    SECRET_KEYS,
    SETTINGS_KEYS,
    Settings,
    SettingsError,
    check_secrets,
    check_unknown_keys,
    load_settings,
)


def _namespace_keys() -> list[str]:
    every = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return sorted(k.split(":", 1)[1] for k in every if k.startswith(f"{PROJECT}:"))


def _raw_setting(key: str) -> Any:
    """A setting's value as the stack file wrote it: structured values arrive as JSON, a bare word as itself."""
    text = runtime_config.get_config(f"{PROJECT}:{key}")
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        # Not JSON: a bare string (`ha-lb:vip: 10.0.0.1`); the model refuses it with the key where an object belongs.
        return text


def _secret_problems() -> list[str]:
    """Secrets set in config: stored encrypted, and values the nodes can take (checked now, at preview)."""
    problems: list[str] = []
    given: dict[str, str] = {}
    for key in SECRET_KEYS:
        full = f"{PROJECT}:{key}"
        # The plain value, read without Config.get's warning about reading a secret in plain text.
        value = runtime_config.get_config(full)
        if value is None:
            continue
        if not runtime_config.is_config_secret(full):
            problems.append(f"{full}: stored in plain text: set it with `pulumi config set --secret {key} ...`")
        given[key] = str(value)
    return problems + check_secrets(given)


def load_stack_settings() -> Settings:
    """Validated settings and secrets of this stack, or SettingsError naming every bad key, before any resource exists.

    Values are read raw from the runtime (not with `Config.get_object`), so that a wrongly shaped one is a problem of
    the list rather than an exception of its own.
    """
    raw = {key: value for key in SETTINGS_KEYS if (value := _raw_setting(key)) is not None}
    problems = check_unknown_keys(_namespace_keys()) + _secret_problems()
    try:
        settings = load_settings(raw)
    except SettingsError as err:
        raise SettingsError(problems + err.problems) from None
    problems += _required_secret_problems(settings)
    if problems:
        raise SettingsError(problems)
    return settings


def _required_secret_problems(s: Settings) -> list[str]:
    """Secrets these settings need that cannot be generated."""
    ipmi = s.stonith_enabled and s.cluster.fencing.agent == "fence_ipmilan"
    if ipmi and runtime_config.get_config(f"{PROJECT}:fencePassword") is None:
        return [
            f"{PROJECT}:fencePassword: required with cluster.fencing.agent fence_ipmilan (the BMCs' password): "
            "`pulumi config set --secret fencePassword ...`"
        ]
    return []


def secret_inputs(config: pulumi.Config) -> ClusterSecretsArgs:
    """The secrets set in config (None where the stack should generate one)."""

    def get(key: str) -> Optional[pulumi.Output[str]]:
        return config.get_secret(key)

    return ClusterSecretsArgs(
        hacluster_password=get("haclusterPassword"),
        stats_password=get("statsPassword"),
        ssh_private_key=get("sshPrivateKey"),
        fence_secret={
            "fence_virsh": get("fenceSshKey"),
            "fence_ipmilan": get("fencePassword"),
            "fence_xvm": get("fenceXvmKey"),
        },
    )
