"""Reading the stack's config from Pulumi: settings, secrets, and the problems Pulumi's schema cannot catch."""

from __future__ import annotations

import json
from typing import Any, Optional

import pulumi
from pulumi.runtime import config as runtime_config

from .secrets import ClusterSecretsArgs
from .settings import PROJECT, SECRET_KEYS, SETTINGS_KEYS, Settings, SettingsError, check_unknown_keys, load_settings


def _namespace_keys() -> list[str]:
    every = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return sorted(k.split(":", 1)[1] for k in every if k.startswith(f"{PROJECT}:"))


def load_stack_settings(config: pulumi.Config) -> Settings:
    """Validated settings of this stack, or SettingsError naming every bad key (before any resource exists)."""
    raw: dict[str, Any] = {}
    problems = check_unknown_keys(_namespace_keys())
    for key in SETTINGS_KEYS:
        try:
            value = config.get_object(key)
        except json.JSONDecodeError:
            problems.append(f"{PROJECT}:{key}: not valid YAML/JSON structure")
            continue
        if value is not None:
            raw[key] = value
    for key in SECRET_KEYS:
        full = f"{PROJECT}:{key}"
        if runtime_config.get_config(full) is not None and not runtime_config.is_config_secret(full):
            problems.append(f"{full}: stored in plain text: set it with `pulumi config set --secret {key} ...`")
    try:
        settings = load_settings(raw)
    except SettingsError as err:
        raise SettingsError(problems + err.problems) from None
    if problems:
        raise SettingsError(problems)
    return settings


def secret_inputs(config: pulumi.Config) -> ClusterSecretsArgs:
    """The secrets set in config (None where the stack should generate one)."""

    def get(key: str) -> Optional[pulumi.Output[str]]:
        return config.get_secret(key)

    return ClusterSecretsArgs(
        hacluster_password=get("haclusterPassword"),
        stats_password=get("statsPassword"),
        ssh_private_key=get("sshPrivateKey"),
    )
