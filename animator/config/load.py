"""Loading a config: the YAML read and bounded, overrides applied, every problem collected
with its key path and reported at once."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import (
    BaseModel,
    ValidationError,
)

from animator.config.files import files_named
from animator.config.model import (
    MAX_CONFIG_BYTES,
    SCHEDULED,
    Animation,
    Config,
    Dream,
    Output,
    _frames_or_default,
)
from animator.config.overrides import _check_length, apply_override
from animator.config.soundtrack import _signal_values, _with_soundtrack
from animator.media import images
from animator.settings import params, schedule
from animator.settings.errors import AnimatorError, ConfigError, close_names, excerpt
from animator.settings.params import FORMATS

MAX_CONFIG_VALUES = 100_000  # values once aliases are expanded: a 500-byte alias bomb holds billions


MAX_CONFIG_DEPTH = 50


def load(path: str | Path, overrides: list[str] = (), **replace) -> Config:
    """Read, override and validate a YAML animation file.

    `overrides` are `key.path=value` strings (the value is read as YAML); `replace` sets top-level
    keys, e.g. `frames=12`. Raises ConfigError naming each bad key path.
    """
    path = Path(path)
    data = _read_yaml(path)
    for item in overrides:
        apply_override(data, item)
    data.update({key: value for key, value in replace.items() if value is not None})
    return from_mapping(data, path.parent, source=str(path))


def read(path: str | Path) -> dict:
    """A YAML animation file's mapping, not yet checked (`from_mapping` checks it)."""
    return _read_yaml(Path(path))


def _read_yaml(path: Path) -> dict:
    images.check_is_file(path, "config", ConfigError)
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"config '{path}' is {path.stat().st_size:,} bytes, over the limit of "
                              f"{MAX_CONFIG_BYTES:,}: is it the right file?")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config '{path}' is not a text file: give a YAML file") from None
    return parse(text, str(path))


def parse(text: str, source: str = "<config>") -> dict:
    """A YAML animation's mapping from its text (`source` names it in errors), not yet checked."""
    _check_length(text, f"config '{source}'")
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"config '{source}': values nested too deeply (the limit is "
                          f"{MAX_CONFIG_DEPTH} levels)") from None
    except yaml.constructor.ConstructorError as error:
        raise ConfigError(f"config '{source}': {_yaml_problem(error)}: YAML tags that build objects "
                          "are not allowed; write plain values") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"config '{source}' is not valid YAML: {_yaml_problem(error)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config '{source}': expected a mapping of keys (input:, frames:, ...) at "
                          f"the top, got {type(data).__name__}")
    _check_extent(data, source)  # before anything walks it (a sweep file, too)
    return data


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def from_mapping(data: dict, base_dir: str | Path = ".", source: str = "<config>") -> Config:
    """Validate an already-parsed mapping (the YAML's content) into a Config."""
    _check_extent(data, source)
    base_dir = Path(base_dir)
    data, soundtrack, key, problems = _with_soundtrack(data, base_dir, source)
    with schedule.signals(_signal_values(data, soundtrack)):
        config = _validated(data, base_dir, source, soundtrack, problems)
    config.soundtrack_key = key
    return config


def _validated(data: dict, base_dir: Path, source: str, soundtrack, problems: list) -> Config:
    from transforms import build_chain, load_plugins

    animation, chain, schedules = None, None, {}
    try:  # each dream schedule is parsed once, here, into `schedules`
        animation = Animation.model_validate(data, context=schedules)
    except ValidationError as error:
        problems.extend(validation_problems(error, data))
    plugins = data.get("plugins")
    frames = animation.frames if animation else _frames_or_default(data)
    problems.extend(_dream_range_problems(schedules, frames))
    if animation is not None:
        problems.extend(_objective_problems(animation.dream))
    unusable = _path_problems(data, base_dir)
    if unusable:  # nothing below may look such a path up: the system raises, not answers
        problems.extend(unusable)
        raise ConfigError(f"config '{source}': " + "; ".join(line for _, line in problems),
                          problems=problems)
    try:  # checked even when other keys are wrong, so that every problem is reported at once
        load_plugins([str(p) for p in plugins] if isinstance(plugins, list) else [], base_dir)
        chain = build_chain(data.get("transforms"), base_dir, frames=frames)
    except ConfigError as error:
        problems.extend(error.problems or [("transforms", line) for line in str(error).splitlines()])
    except AnimatorError as error:  # a plugin that cannot be loaded
        problems.extend(("plugins", line) for line in str(error).splitlines())
    if animation is not None:
        problems.extend(_output_suffix_problems(animation.output))
    if problems:
        raise ConfigError(f"config '{source}': " + "; ".join(line for _, line in problems),
                          problems=problems)
    return Config(animation, base_dir, source, chain, schedules, soundtrack)


def _path_problems(data: Mapping, base_dir: Path) -> list[tuple[str, str]]:
    """Each file the config names (`files_named`, and `output.path`) that the system cannot look
    up at all: a name too long, a NUL byte, a character no file name encodes."""
    named = dict(files_named(data))
    output = data.get("output")
    if isinstance(output, dict) and isinstance(output.get("path"), str):
        named["output.path"] = output["path"]
    problems = []
    for key, file in named.items():
        if not isinstance(file, str):
            continue
        problem = images.path_problem(base_dir / file)
        if problem:
            problems.append((key, f"{key}: cannot use the path {excerpt(file)} ({problem})"))
    return problems


def _objective_problems(dream: Dream) -> list[tuple[str, str]]:
    """The objective's terms checked (their weights are schedules): (key path, problem) each."""
    from animator.config import objective

    problems = []
    for name, check in (("layers", lambda: objective.parse_layers(dream.layers, path="dream.layers")),
                        ("objective", lambda: objective.parse_items(dream.objective))):
        if getattr(dream, name) and not (name == "objective" and isinstance(dream.objective, str)):
            try:
                check()
            except ConfigError as error:
                problems.append((f"dream.{name}", str(error)))
    return problems


def _check_extent(data, source: str) -> None:
    """Refuse a config too big to check quickly: YAML aliases repeat a value without copying it
    (`&a [*b, *b]`), so a tiny file can stand for billions of values. Stops counting at the limit."""
    pending, count = [(data, 0)], 1
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            children = [item for pair in value.items() for item in pair]
        elif isinstance(value, (list, tuple)):
            children = value
        else:
            continue
        count += len(children)  # counted before they are queued: the queue stays bounded too
        if count > MAX_CONFIG_VALUES:
            raise ConfigError(f"config '{source}' holds over {MAX_CONFIG_VALUES:,} values once its "
                              "YAML aliases (*name) are expanded: write the values out, fewer")
        if depth >= MAX_CONFIG_DEPTH:
            raise ConfigError(f"config '{source}': values nested over {MAX_CONFIG_DEPTH} levels deep")
        pending.extend((item, depth + 1) for item in children)


def _output_suffix_problems(output: Output) -> list[tuple[str, str]]:
    """An output path whose suffix names no format this writes (`x.webm`), with no `format`
    given: refused, rather than quietly rendering a folder of frames by that name."""

    suffix = Path(output.path or "").suffix.lower()
    if not suffix or suffix in FORMATS or output.format is not None:
        return []
    return [("output.path", f"output.path: cannot write '{output.path}': unsupported suffix "
                            f"'{suffix}'; use {', '.join(FORMATS)}, or a name without a suffix (or "
                            "set output.format) for a folder of frames")]


def _dream_range_problems(schedules: Mapping[str, schedule.Schedule], frames: int) -> list[tuple[str, str]]:
    """Each dream setting's schedule (parsed by the model's validation) checked against its declared
    range at every frame; one that does not parse is left to that validation, which reports it."""
    problems = []
    for name in SCHEDULED:
        param, parsed = params.DREAM[name], schedules.get(name)
        if param.range is None or parsed is None:
            continue
        problem = params.range_problem(parsed, param.range, frames, f"dream.{name}",
                                       integer=param.annotation is int)
        if problem:
            problems.append((f"dream.{name}", problem))
    return problems


def validation_problems(error: ValidationError, data: dict,
                        model: type[BaseModel] = Animation) -> list[tuple[str, str]]:
    """One (key path, `key.path: message, got value`) per problem, with near names for unknown keys
    (`model`: the model that was validated, whose field names are the near names)."""
    lines = []
    for item in _fitting_branches(error.errors(include_url=False), data):
        loc = _key_path(item["loc"], data)
        path = _path_text(loc)
        if item["type"] == "extra_forbidden":
            lines.append((path, f"{path}: unknown key{_near_key(loc, model)}"))
        elif item["type"] in _BOUND_ERRORS and _declared(loc) is not None:
            lines.append((path, f"{path}: must be {_declared(loc).range}, got {item.get('input')!r}"))
        elif item["type"] == "value_error":
            lines.append((path, f"{path}: {item['msg'].removeprefix('Value error, ')}"))
        else:
            lines.append((path, f"{path}: {_message(item)}, got {excerpt(item.get('input'))}"))
    return list(dict.fromkeys(lines))


_SHAPE_ERRORS = ("missing", "extra_forbidden")


def _fitting_branches(errors: list[dict], data) -> list[dict]:
    """The errors less those of the union members the value does not have the shape of, where
    one member has it: `input: {video: a.mp4, start: -1}` is a clip whose start is wrong, not
    also a path that is not a string and a noise input without `noise:`. A member has the
    shape when none of its errors is a missing or unknown key or a wrong type of the whole."""
    members: dict[tuple, dict[object, list[dict]]] = {}
    for item in errors:
        where = _union_member(item["loc"], data)
        if where is not None:
            members.setdefault(item["loc"][:where], {}).setdefault(item["loc"][where], []).append(item)
    dropped = set()
    for prefix, tried in members.items():
        fitting = [member for member, items in tried.items()
                   if not any(_misshapen(item, len(prefix) + 1) for item in items)]
        if len(fitting) == 1:
            dropped.update(id(item) for member, items in tried.items() if member != fitting[0]
                           for item in items)
    return [item for item in errors if id(item) not in dropped]


def _misshapen(item: dict, depth: int) -> bool:
    # a member's own check (a clip's end before its start) fails a value of the right shape
    return item["type"] in _SHAPE_ERRORS or (len(item["loc"]) <= depth and item["type"] != "value_error")


def _union_member(loc: tuple, data) -> int | None:
    """The index in pydantic's `loc` of the first union member it names, or None."""
    node = data
    for index, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif _is_union_branch(part):
            return index
        else:
            node = None
    return None


def _path_text(loc: list) -> str:
    """A key path as the config's errors write it: `dream.objective[0].guide`."""
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
    return text or "(top)"


def _key_path(loc: tuple, data) -> list:
    """pydantic's `loc` less the union members it names: a part that is a key of the data is
    kept even when it looks like one (a misspelt `Color:` key)."""
    path, node = [], data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif _is_union_branch(part):
            continue
        else:
            node = None
        path.append(part)
    return path


_BOUND_ERRORS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")


def _declared(loc: list) -> params.Parameter | None:
    """The declaration of the setting at key path `loc` (`["output", "loop"]`, `["fps"]`)."""
    section, name = (str(loc[0]), loc[1]) if len(loc) == 2 else ("animation", loc[0])
    param = params.SECTIONS.get(section, {}).get(name)
    return param if param is not None and param.range is not None else None


def _is_union_branch(part) -> bool:
    # pydantic names the union member it tried (`str`, `NoiseInput`, `dict[str,any]`) in the loc
    return isinstance(part, str) and (part[:1].isupper() or "[" in part or part in (
        "str", "int", "float", "bool", "list", "dict", "tuple", "function-after"))


def _message(item: dict) -> str:
    msg = item["msg"]
    return msg[0].lower() + msg[1:] if msg else item["type"]


def _near_key(loc: list, model: type[BaseModel]) -> str:
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    return close_names(str(loc[-1]), list(model.model_fields)).replace(" Did you", "; did you")
