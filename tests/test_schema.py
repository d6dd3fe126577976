"""The shipped JSON Schema of a stack file: generated from the settings model, and it knows every documented key."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.schema import SCHEMA_FILE, render, stack_file_schema
from components.settings import SECRET_KEYS
from tests.conftest import EXAMPLE_STACKS, ROOT

SCHEMA = stack_file_schema()
CONFIG = SCHEMA["properties"]["config"]


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """A schema with its `$ref` followed and, for a nullable value, the non-null branch."""
    if "$ref" in schema:
        return resolve(SCHEMA["definitions"][schema["$ref"].rsplit("/", 1)[1]])
    branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]
    return resolve(branches[0]) if len(branches) == 1 else schema


def child(schema: dict[str, Any], key: str) -> dict[str, Any] | None:
    """The schema of one key of an object, or None when the object does not take it."""
    schema = resolve(schema)
    if key == "[]":
        return schema.get("items")
    if key in schema.get("properties", {}):
        return schema["properties"][key]  # type: ignore[no-any-return]
    if isinstance(schema.get("additionalProperties"), dict):
        return schema["additionalProperties"]  # type: ignore[no-any-return]
    if any(re.search(p, key) for p in schema.get("patternProperties", {})):
        return {}
    return None


def schema_at(path: list[str]) -> dict[str, Any] | None:
    schema: dict[str, Any] | None = CONFIG
    for key in path:
        schema = child(schema, key) if schema is not None else None
    return schema


def walk(value: Any, schema: dict[str, Any], path: str) -> Iterator[str]:
    """Problems of a value against the schema: keys it does not know, and text its patterns refuse."""
    schema = resolve(schema)
    if isinstance(value, dict):
        for key, item in value.items():
            sub = child(schema, key)
            if sub is None:
                yield f"{path}.{key}: not in the schema"
            else:
                yield from walk(item, sub, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from walk(item, schema.get("items", {}), f"{path}[{i}]")
    elif isinstance(value, str) and not matches(schema, value):
        yield f"{path}: {value!r} does not match the schema's pattern"


def matches(schema: dict[str, Any], text: str) -> bool:
    # The patterns are written for ECMAScript (`^(?:...)$`, where `$` ends the text); here they are matched in full.
    return (
        "pattern" not in schema or re.fullmatch(schema["pattern"].removeprefix("^").removesuffix("$"), text) is not None
    )


def test_the_shipped_schema_is_the_generated_one() -> None:
    assert SCHEMA_FILE.read_text() == render(), "the settings model changed: run `python -m components.schema`"
    assert json.loads(SCHEMA_FILE.read_text()) == SCHEMA


def test_the_schema_takes_the_project_keys_and_any_other_namespace() -> None:
    assert set(CONFIG["properties"]) == {
        *(f"ha-lb:{k}" for k in ("libvirt", "nodes", "network", "vip", "cluster", "ssh", "haproxy", "cloudInit")),
        *(f"ha-lb:{k}" for k in SECRET_KEYS),
    }
    assert CONFIG["required"] == ["ha-lb:vip"] and CONFIG["additionalProperties"] is False
    assert child(CONFIG, "libvirt:uri") == {} and child(CONFIG, "ha-lb:vips") is None
    assert resolve(CONFIG["properties"]["ha-lb:statsPassword"])["required"] == ["secure"]


@pytest.mark.parametrize("stack", EXAMPLE_STACKS, ids=lambda p: p.name)
def test_every_key_of_an_example_stack_is_in_the_schema(stack: Path) -> None:
    doc = yaml.safe_load(stack.read_text())
    assert list(walk(doc, SCHEMA, stack.name)) == []


def readme_reference_keys() -> list[str]:
    """The keys in the first column of the README's config reference table (`cloudInit.*` gives `cloudInit`)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Config reference", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [key.removesuffix(".*") for row in rows for key in re.findall(r"`([^`]+)`", row.split("|")[1])]


def test_every_key_of_the_readme_reference_is_in_the_schema() -> None:
    keys = readme_reference_keys()
    assert len(keys) > 30
    missing = [key for key in keys if schema_at(["ha-lb:" + key.split(".")[0], *key.split(".")[1:]]) is None]
    assert missing == []


def test_the_readme_reference_covers_every_key_of_every_section() -> None:
    documented = set(readme_reference_keys())
    undocumented = []
    for full_key, sub in CONFIG["properties"].items():
        section = full_key.removeprefix("ha-lb:")
        if section in documented:
            continue
        undocumented += [
            f"{section}.{k}" for k in resolve(sub).get("properties", {}) if f"{section}.{k}" not in documented
        ]
    assert undocumented == []


@pytest.mark.parametrize(
    "value,ok",
    [("lb", True), ("lb-", True), ("lb\n", False), ("LB", False)],
)
def test_schema_patterns_are_the_models(value: str, ok: bool) -> None:
    problems = list(walk({"config": {"ha-lb:nodes": {"namePrefix": value}}}, SCHEMA, "stack"))
    assert (problems == []) == ok


@pytest.mark.skipif(shutil.which("node") is None, reason="no node to compile ECMAScript patterns with")
def test_every_pattern_compiles_as_ecmascript_and_refuses_a_trailing_newline() -> None:
    # Editors compile the patterns as JavaScript regular expressions (with the `u` flag).
    script = (
        "const s = JSON.parse(require('fs').readFileSync(0, 'utf8')); const bad = [];"
        "(function walk(o) { if (o && typeof o === 'object') for (const [k, v] of Object.entries(o)) {"
        "  if (k === 'pattern' && new RegExp(v, 'u').test('lb\\n')) bad.push(v); walk(v); } })(s);"
        "console.log(JSON.stringify(bad));"
    )
    done = subprocess.run(["node", "-e", script], input=render(), capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []
