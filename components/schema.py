"""JSON Schema of a stack file (`Pulumi.<stack>.yaml`), generated from the settings model so that it cannot drift.

An editor validates and completes a stack file with it (README, "Config reference"). Write it again after changing
the settings model with `python -m components.schema`; tests/test_schema.py fails while the shipped file differs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .settings import PROJECT, SECRET_KEYS, Settings

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema" / f"{PROJECT}.config.schema.json"

SECRET_DESCRIPTIONS = {
    "haclusterPassword": "Password of the hacluster user pcs authenticates with: 8-128 printable ASCII characters, "
    "one line. Generated when unset.",
    "statsPassword": "Password of the HAProxy stats page: 8-128 of letters, digits and ._~!@%^*+=,;?- . "
    "Generated when unset.",
    "sshPrivateKey": "Unencrypted OpenSSH or PEM private key Pulumi connects to the nodes with "
    "(`cat key | pulumi config set --secret sshPrivateKey`). An ED25519 key is generated when unset.",
    "fencePassword": "BMC password for cluster.fencing.agent fence_ipmilan: 1-20 printable ASCII characters. "
    "Required with that agent.",
    "fenceSshKey": "Unencrypted private key fence_virsh logs in to the hypervisors with; its public half is the "
    "stack output fenceSshPublicKey. An ED25519 key is generated when unset.",
    "fenceXvmKey": "fence_xvm's shared key (32-4096 base64 characters), the same as fence_virtd's on the "
    "hypervisors (stack output fenceXvmKey). Generated when unset.",
}


def _secure_value(key: str) -> dict[str, Any]:
    # Plain text is refused by the program: in a stack file a secret is only ever Pulumi's encrypted form.
    how = f"Set with `pulumi config set --secret {key}`; plain text is refused."
    return {
        "description": f"{SECRET_DESCRIPTIONS[key]} {how}",
        "type": "object",
        "properties": {"secure": {"type": "string", "minLength": 1}},
        "required": ["secure"],
        "additionalProperties": False,
    }


def stack_file_schema() -> dict[str, Any]:
    """The schema of a whole stack file: its `config:` holds the project's keys, each the settings model's part."""
    model = Settings.model_json_schema(by_alias=True, ref_template="#/definitions/{model}")
    properties: dict[str, Any] = {f"{PROJECT}:{key}": sub for key, sub in model["properties"].items()}
    properties.update({f"{PROJECT}:{key}": _secure_value(key) for key in SECRET_KEYS})
    config = {
        "description": f"Stack config. Keys of the {PROJECT}: namespace are the program's settings (unknown ones "
        "are refused); other namespaces' keys pass.",
        "type": "object",
        "properties": properties,
        "required": [f"{PROJECT}:{key}" for key in model.get("required", [])],
        # Other namespaces (libvirt:, pulumi:, ...) are not this program's to check.
        "patternProperties": {f"^(?!{PROJECT}:)": {}},
        "additionalProperties": False,
    }
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": f"Pulumi.<stack>.yaml of {PROJECT}",
        "description": "Generated from components/settings.py by `python -m components.schema`: do not edit.",
        "type": "object",
        "properties": {"config": config},
        "definitions": model["$defs"],
    }


def render() -> str:
    return json.dumps(stack_file_schema(), indent=2) + "\n"


def main() -> None:
    SCHEMA_FILE.parent.mkdir(exist_ok=True)
    SCHEMA_FILE.write_text(render())
    sys.stdout.write(f"wrote {SCHEMA_FILE}\n")


if __name__ == "__main__":
    main()
