"""Settings dataclasses from their config sections (config is data: YAML dicts validated by the schema)."""

from __future__ import annotations

import dataclasses
import os

import yaml


def settings(cls, config: dict | None):
    """A settings dataclass from its config section, failing on unknown keys. A list given for a field whose
    default is a tuple becomes a tuple (YAML has no tuples), so frozen settings stay hashable and comparable."""
    config = dict(config or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(config) - set(fields)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {sorted(unknown)}")
    for name, value in config.items():
        if isinstance(value, list) and isinstance(fields[name].default, tuple):
            config[name] = tuple(value)
    return cls(**config)


def load_schema(path: str | os.PathLike) -> dict:
    """A JSON schema written as YAML (the workflow's ``config/schemas/*.schema.yaml``)."""
    with open(path) as file:
        return yaml.safe_load(file)


def typed_command_line_values(config: dict, schema: dict) -> dict:
    """Give nested ``--config`` values the types the schema asks for, in place; returns ``config``.

    Snakemake reads a nested command-line value such as ``--config pti='{keep_generator: true}'`` with YAML's
    base loader, which leaves every scalar inside a string (``'true'``), so the schema would reject it. Where the
    schema does not allow a string, a string value is read as a number or as YAML and kept when its type is one
    the schema allows; everything else is left for the schema to judge.

    Args:
        config: the workflow's config dict.
        schema: the config's JSON schema (``properties`` per object, ``items`` per array).
    """
    for key, value in config.items():
        part = schema.get("properties", {}).get(key)
        if part is not None:
            config[key] = _typed(value, part)
    return config


def _typed(value, schema: dict):
    allowed = schema.get("type", [])
    allowed = [allowed] if isinstance(allowed, str) else list(allowed)
    if isinstance(value, str) and allowed and "string" not in allowed:
        parsed = _parsed(value)
        if _json_type(parsed) in allowed or (_json_type(parsed) == "integer" and "number" in allowed):
            value = parsed
    if isinstance(value, dict):
        typed_command_line_values(value, schema)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        value = [_typed(item, schema["items"]) for item in value]
    return value


def _parsed(text: str):
    """``text`` as an int, else a float (``1e-3``, which YAML 1.1 leaves a string), else as YAML."""
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text  # the schema will say what is wrong with it


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "unknown")
