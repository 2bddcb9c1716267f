"""The studio's form, described from the parameters' declarations: the config's models (type,
range, default) and the registered transforms' signatures. The page builds its fields from this.

Each field is a mapping: `path` (its key path in the YAML), `kind` (number, integer, schedule,
choice, bool, text, size, json), `default`, and where known `min`/`max` (with `exclusive`),
`choices` and `help`.
"""

from __future__ import annotations

import typing
from types import NoneType, UnionType

import annotated_types
from pydantic import BaseModel

from animator.config import Animation

# Keys the page does not edit: the studio names each render's output file, and plugins are
# loaded from the command line only. The input has its own widget (an uploaded image, or noise).
NOT_IN_FORM = {"output.path", "plugins", "transforms", "input"}


def describe() -> dict:
    """The form: the config's fields in declaration order, and every registered transform."""
    return {"fields": list(_fields(Animation, "")), "transforms": _transforms()}


def _fields(model: type[BaseModel], prefix: str):
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        if path in NOT_IN_FORM:
            continue
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _fields(annotation, f"{path}.")
            continue
        field = {"path": path, "default": _plain(info.default), "help": info.description or ""}
        field.update(_kind(annotation, info.metadata))
        if field["kind"] == "schedule":
            field["help"] = "; ".join(filter(None, [field["help"], _schedule_help(name)]))
        yield field


def _kind(annotation, metadata) -> dict:
    """A field's widget from its annotation: a number with its bounds, a choice, a schedule, ..."""
    options = [a for a in typing.get_args(annotation) if a is not NoneType] \
        if _is_union(annotation) else [annotation]
    optional = _is_union(annotation) and NoneType in typing.get_args(annotation)
    if len(options) > 1 and str in options and any(o in (int, float) for o in options):
        return {"kind": "schedule", "optional": optional}
    only = options[0] if len(options) == 1 else None
    if typing.get_origin(only) is typing.Literal:
        return {"kind": "choice", "choices": list(typing.get_args(only)), "optional": optional}
    if only is bool:
        return {"kind": "bool"}
    if only in (int, float):
        return {"kind": "integer" if only is int else "number", **_bounds(metadata)}
    if only is str:
        return {"kind": "text", "optional": optional}
    if typing.get_origin(only) is tuple and len(typing.get_args(only)) == 2:
        return {"kind": "size", "optional": optional}
    return {"kind": "json", "optional": optional}


def _is_union(annotation) -> bool:
    return typing.get_origin(annotation) in (typing.Union, UnionType)


def _bounds(metadata) -> dict:
    bounds = {}
    for item in metadata:
        if isinstance(item, (annotated_types.Ge, annotated_types.Gt)):
            bounds["min"] = getattr(item, "ge", getattr(item, "gt", None))
            bounds["min_exclusive"] = isinstance(item, annotated_types.Gt)
        if isinstance(item, (annotated_types.Le, annotated_types.Lt)):
            bounds["max"] = getattr(item, "le", getattr(item, "lt", None))
    return bounds


def _schedule_help(name: str) -> str:
    from animator.params import DREAM

    bounds = DREAM[name].range if name in DREAM else None
    rule = f"must be {bounds}" if bounds else ""
    return f"{rule}; or keyframes {{0: a, 60: b}}, or an expression of t".lstrip("; ")


def _transforms() -> list[dict]:
    """Every registered transform (built-ins and the plugins given on the command line)."""
    import transforms
    from transforms.registry import type_name

    registry = transforms.active()
    listed = []
    for name in (name for name in registry.available() if name in registry):  # no entry point imports
        transform = registry.get(name)
        params = [{"name": p.name, "type": type_name(p.annotation) if p.annotation else "",
                   "kind": _param_kind(p.annotation, p.default),
                   "choices": list(typing.get_args(p.annotation))
                   if typing.get_origin(p.annotation) is typing.Literal else None,
                   "default": None if p.required else _plain(p.default), "required": p.required}
                  for p in transform.params]
        listed.append({"name": name, "help": transform.description, "origin": transform.origin,
                       "params": params})
    return listed


def _param_kind(annotation, default) -> str:
    from transforms import Profile

    if annotation in (int, float, Profile) or (annotation is None and isinstance(default, (int, float))
                                      and not isinstance(default, bool)):
        return "schedule"
    if annotation is bool:
        return "bool"
    if typing.get_origin(annotation) is typing.Literal:
        return "choice"
    if annotation is str:
        return "text"
    return "json"


def _plain(value):
    """A default as JSON can carry it (tuples as lists, models as mappings, none for required)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str, list, dict)):
        return value
    return None
