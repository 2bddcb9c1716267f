"""Small helpers shared by the test files (imported as `helpers`: tests/ is on sys.path)."""

from __future__ import annotations


def with_changes(base: dict, **changes) -> dict:
    """`base` with `section__key=value` (one level deep) or `key=value` replaced."""
    data = {key: dict(value) if isinstance(value, dict) else value for key, value in base.items()}
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            data[section] = {**data.get(section, {}), field: value}
        else:
            data[key] = value
    return data
