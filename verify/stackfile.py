"""Settings from a stack file (`Pulumi.<stack>.yaml`), for tools that run without the Pulumi engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from components.settings import PROJECT, SECRET_KEYS, Settings, SettingsError, check_unknown_keys, load_settings


def stack_config(stack_file: Path) -> dict[str, Any]:
    """The `config:` block of a stack file."""
    doc = yaml.safe_load(stack_file.read_text()) or {}
    return dict(doc.get("config") or {})


def settings_from_stack_file(stack_file: Path) -> Settings:
    """Validated settings of a stack file; secrets are not needed (nor read) for the offline checks."""
    config = stack_config(stack_file)
    raw = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith(f"{PROJECT}:")}
    problems = check_unknown_keys(raw)
    try:
        settings = load_settings({k: v for k, v in raw.items() if k not in SECRET_KEYS})
    except SettingsError as err:
        raise SettingsError(problems + err.problems) from None
    if problems:
        raise SettingsError(problems)
    return settings
