"""Key-path overrides of a parsed config: `--set dream.steps=3`, the API's `dream__steps`,
a sweep's grid keys; one `set_key` applies them all."""

from __future__ import annotations

import yaml

from animator.config.model import MAX_CONFIG_BYTES
from animator.settings.errors import ConfigError, excerpt


def apply_override(data: dict, item: str) -> None:
    """Apply one `--set KEY.PATH=VALUE` (the value read as YAML) to the parsed YAML `data`."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected KEY.PATH=VALUE, e.g. dream.steps=5")
    _check_length(text, f"--set {excerpt(key)}")
    try:
        value = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        value = text
    try:
        set_key(data, key.strip(), value)
    except ConfigError as error:
        raise ConfigError(f"--set {item!r}: {error}") from None


def set_key(data: dict, key: str, value) -> None:
    """Set `key` (a dotted path such as `dream.steps` or `transforms.0.zoom.factor`, where a number
    indexes a list) to `value` in the parsed YAML `data`, creating missing sections."""
    *parents, last = key.split(".")
    node = data
    for part in parents:
        child = _child(node, part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, (dict, list)):
            raise ConfigError(f"'{part}' is not a section")
        node = child
    if isinstance(node, list):
        _check_index(node, last)
        node[int(last)] = value
    else:
        node[last] = value


def get_key(data: dict, key: str):
    """The value at `key` (a dotted path, as `set_key` takes it) in the parsed YAML `data`, or None
    where the path leads nowhere."""
    node = data
    try:
        for part in key.split("."):
            node = _child(node, part) if isinstance(node, (dict, list)) else None
    except ConfigError:  # an index that is not one, or out of range
        return None
    return node


def _child(node: dict | list, part: str):
    if isinstance(node, dict):
        return node.get(part)
    _check_index(node, part)
    return node[int(part)]


def _check_index(items: list, part: str) -> None:
    if not part.isdigit():
        raise ConfigError(f"'{part}' is not a list index (0, 1, ...)")
    if int(part) >= len(items):
        raise ConfigError(f"index {part} is out of range: the list has {len(items)} item(s)")


def _check_length(text: str, what: str) -> None:
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{what} is {len(text):,} characters long, over the limit of "
                          f"{MAX_CONFIG_BYTES:,}")
