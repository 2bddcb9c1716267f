"""The studio's form, described from the parameters' declarations (`animator.settings.params`: type,
range, default and help of each setting, and of each registered transform's parameters). The
page builds its fields from this; nothing here restates a default, a range or a help text.

Each field is a mapping: `path` (its key path in the YAML), `kind` (number, integer, schedule,
choice, bool, text, size, json), `default`, `help`, and where declared `min`/`max` and `choices`.
"""

from __future__ import annotations

import typing
from types import NoneType, UnionType

from animator.settings import params

# Keys the page does not edit: the studio names each render's output file, and plugins are
# loaded from the command line only.
NOT_IN_FORM = {"output.path"}
SCHEDULE_HELP = "or keyframes {0: a, 60: b}, or an expression of t"


def describe() -> dict:
    """The form: the frame size, then each section's declared settings, every registered
    transform (built-ins and the command line's plugins; installed plugins are not imported),
    and the noise input with its declared defaults."""
    fields = [_size()]
    for section, table in params.parameters().items():
        prefix = "" if section == "animation" else f"{section}."
        fields += [_audio_path()] if section == "audio" else []
        fields += [{"path": prefix + p.name, **_field(p)} for p in table
                   if prefix + p.name not in NOT_IN_FORM]
    return {"fields": fields, "transforms": _transforms(), "noise": _noise()}


def _size() -> dict:
    """`size:` is structured (config.py declares it): width and height, or the input's own."""
    from animator.config import Animation

    return {"path": "size", "kind": "size", "default": None,
            "help": Animation.model_fields["size"].description}


def _audio_path() -> dict:
    """`audio.path`: the soundtrack's file, which config.py declares beside its cut."""
    from animator.config import Soundtrack

    return {"path": "audio.path", "name": "path", "kind": "text", "default": None,
            "help": Soundtrack.model_fields["path"].description}


def _noise() -> dict:
    """`input:` as noise, with the size and seed config.py declares for it."""
    from animator.config import Noise

    return {"noise": Noise().model_dump(mode="json")}


def _field(parameter: params.Parameter) -> dict:
    """A declared parameter as the page's widget: its kind, default, bounds, choices and help."""
    data = parameter.as_dict()
    bounds = {"min": next((data[k] for k in ("ge", "gt") if k in data), None),
              "max": next((data[k] for k in ("le", "lt") if k in data), None)}
    help_text = "; ".join(part for part in (data["help"], data["range"] and f"must be {data['range']}",
                                            parameter.scheduled and SCHEDULE_HELP) if part)
    return {"name": parameter.name, "kind": _kind(parameter), "type": data["type"],
            "default": _plain(data["default"]), "required": data["required"],
            "choices": [_plain(c) for c in data["choices"]] if data["choices"] else None,
            "help": help_text, **{k: v for k, v in bounds.items() if v is not None}}


def _kind(parameter: params.Parameter) -> str:
    if parameter.scheduled:
        return "schedule"
    if parameter.choices:
        return "choice"
    annotation = parameter.annotation
    if typing.get_origin(annotation) in (typing.Union, UnionType):
        options = [a for a in typing.get_args(annotation) if a is not NoneType]
        annotation = options[0] if len(options) == 1 else None
    return {bool: "bool", int: "integer", float: "number", str: "text"}.get(annotation, "json")


def _transforms() -> list[dict]:
    import transforms

    registry = transforms.active()
    return [{"name": name, "help": registry.get(name).description, "origin": registry.get(name).origin,
             "params": [_field(p) for p in registry.get(name).params]}
            for name in registry.available() if name in registry]  # no entry point imports


def _plain(value):
    """A default as JSON can carry it (tuples as lists; none for a required parameter)."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str, list, dict)):
        return value
    return None
