"""Settings dataclasses from their config sections (config is data: YAML dicts validated by the schema)."""

from __future__ import annotations

import dataclasses


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
