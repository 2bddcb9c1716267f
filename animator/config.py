"""An animation's YAML file, checked once into frozen models; every error names its key path.

`load(path)` reads the YAML with `yaml.safe_load` (no tags that build objects), applies
`--set key.path=value` overrides, and validates everything together: unknown keys (with the near
name), wrong types, out-of-range values, schedules and the transform chain. Nothing deeper reads
files or the environment. A config is bounded before anything walks it: at most
`MAX_CONFIG_BYTES` of text, `MAX_CONFIG_VALUES` values once YAML aliases are expanded, nested at
most `MAX_CONFIG_DEPTH` deep, and at most `MAX_FRAMES` frames.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from animator import io, params, schedule
from animator.dream import DreamSettings
from animator.errors import AnimatorError, ConfigError, close_names, excerpt

MAX_CONFIG_BYTES = 256 * 1024  # a long config is a few kilobytes; YAML parses ~100 KB/s in Python
MAX_CONFIG_VALUES = 100_000  # values once aliases are expanded: a 500-byte alias bomb holds billions
MAX_CONFIG_DEPTH = 50
MAX_FRAMES = params.ANIMATION["frames"].range.le
# An image input with one of these suffixes is a video given the wrong way (read_image would
# give its first frame at best).
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg")

Number = int | float
ScheduleValue = int | float | str | dict
Side = Annotated[int, Field(ge=8, le=params.MAX_SIDE)]
Size = tuple[Side, Side]
Seconds = Annotated[float, Field(allow_inf_nan=False)]
SCHEDULED = tuple(name for name, param in params.DREAM.items() if param.scheduled)


class Strict(BaseModel):
    """Frozen, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _declared_model(name: str, table: dict[str, params.Parameter]) -> type[Strict]:
    """A model whose fields are the table's parameters: type, default and checks from there."""
    return create_model(name, __base__=Strict, **{key: _field(p) for key, p in table.items()})


def _field(param: params.Parameter) -> tuple:
    # a float is finite: pydantic's floats take nan and inf, which every later use refuses or
    # trips on (an `fps: .inf` would be said to break the range, an `end: .inf` blamed on the file)
    finite = {"allow_inf_nan": False} if param.annotation is float and not param.scheduled else {}
    info = Field(param.default, description=param.help, **finite)
    if param.scheduled:  # checked here for its form; its range over the frames by from_mapping
        annotation = ScheduleValue | None if param.default is None else ScheduleValue
        return Annotated[annotation, BeforeValidator(functools.partial(_parse, param))], info
    if param.range is not None:  # pydantic checks it; `validation_problems` words its error
        return Annotated[param.annotation, param.range], info
    return param.annotation, info


def _parse(param: params.Parameter, value, info: ValidationInfo):
    """Check a scheduled value's form as written (before pydantic reads `true` as 1 or words a
    list's error once per type it tried); the schedule goes to the validation's context
    (`from_mapping` gives one), so that the range check and the Config use it rather than parse
    it again."""
    if value is None or (isinstance(param.default, str) and value == param.default):  # "auto"
        return value
    try:
        parsed = schedule.parse(value, param.name)
    except ConfigError as error:
        raise ValueError(str(error).removeprefix(f"{param.name}: ")) from None
    if isinstance(info.context, dict):
        info.context[param.name] = dataclasses.replace(parsed, path=f"dream.{param.name}")
    return value


class Noise(Strict):
    size: Size = (512, 512)
    seed: Annotated[int, params.ANIMATION["seed"].range] = 0


class NoiseInput(Strict):
    noise: Noise


class Clip(Strict):
    """The `input: {video: ...}` form: a video clip, optionally from `start` to `end` (seconds)."""

    video: str
    start: Annotated[Seconds, Field(ge=0, description="seconds into the clip to begin at")] = 0.0
    end: Annotated[Seconds | None, Field(gt=0, description="seconds into the clip to stop at")] = None

    @model_validator(mode="after")
    def _ordered(self):
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"input.end must be after input.start ({self.start:g} s), got {self.end:g}")
        return self


class Video(_declared_model("VideoDeclared", params.VIDEO)):
    """The `video:` section: how each frame of a video input carries the previous dream."""


class Dream(_declared_model("DreamDeclared", params.DREAM)):
    """The `dream:` section; numeric values may be schedules of the frame index `t`."""


class Color(_declared_model("ColorDeclared", params.COLOR)):
    """The `color:` section: colour coherence across frames."""


class Output(_declared_model("OutputDeclared", params.OUTPUT)):
    """The `output:` section: where and how the frames become a video."""

    @field_validator("checkpoint_every", mode="before")
    @classmethod
    def _cadence(cls, value):
        checkpoint_cadence(value)
        return value

    @model_validator(mode="after")
    def _format_matches_suffix(self):
        from animator.video import FORMATS

        suffix = Path(self.path or "").suffix.lower()
        named = FORMATS.get(suffix)
        if self.format in FORMATS.values() and named not in (None, self.format):
            raise ValueError(f"format {self.format} does not match the path's suffix {suffix} "
                             f"({self.path!r}): change one of them")
        return self


def format_suffix(format: str | None) -> str:
    """The file suffix of a video format (`webp` -> `.webp`), from `video.FORMATS`; '' for `frames`
    or anything that names no video format."""
    from animator.video import FORMATS

    suffixes = {kind: suffix for suffix, kind in FORMATS.items()}
    return suffixes.get(format, "") if isinstance(format, str) else ""


def checkpoint_cadence(value: int | str) -> tuple[int | None, float | None]:
    """`output.checkpoint_every` as (frames, seconds), one of them None: `5` -> (5, None),
    `"30s"` -> (None, 30.0). Raises ValueError for anything else."""
    if isinstance(value, str) and value.strip().isdigit():  # as the command line passes it
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value, None
    if isinstance(value, str) and value.endswith("s"):
        try:
            seconds = float(value[:-1])
        except ValueError:
            seconds = math.nan
        if seconds > 0 and math.isfinite(seconds):
            return None, seconds
    raise ValueError(f"must be a number of frames (>= 1) or of seconds ('30s'), got {value!r}")


class Animation(_declared_model("AnimationDeclared", params.ANIMATION)):
    """The whole file."""

    input: str | NoiseInput | Clip
    size: Annotated[Size | None, Field(description="width, height of the frames in pixels; "
                                    "empty: the input's own size")] = None
    dream: Dream = Dream()
    transforms: list[Any] = []  # checked by transforms.build_chain
    plugins: list[str] = []
    color: Color = Color()
    output: Output = Output()
    video: Video = Video()

    @field_validator("input", mode="after")
    @classmethod
    def _not_a_video(cls, value):
        if isinstance(value, str) and Path(value).suffix.lower() in VIDEO_SUFFIXES:
            raise ValueError(f"{value!r} is a video: write input: {{video: {value}}} to dream "
                             "each of its frames")
        return value


class Config:
    """A validated animation plus where it came from; schedules and the chain are compiled."""

    def __init__(self, animation: Animation, base_dir: Path, source: str, chain,
                 schedules: Mapping[str, schedule.Schedule] | None = None):
        """`schedules`: dream settings already parsed from `animation` (`from_mapping`'s)."""
        self.animation = animation
        self.base_dir = base_dir
        self.source = source
        self.chain = chain
        self._parsed = dict(schedules or {})

    def __getattr__(self, name):
        return getattr(self.animation, name)

    @property
    def input_path(self) -> Path | None:
        """The input image's path (relative paths are from the config's folder), or None for noise."""
        if isinstance(self.animation.input, str):
            return self.base_dir / self.animation.input
        if isinstance(self.animation.input, Clip):
            return self.base_dir / self.animation.input.video
        return None

    @property
    def video_input(self) -> Clip | None:
        """The `input: {video: ...}` section, or None for an image or noise input."""
        return self.animation.input if isinstance(self.animation.input, Clip) else None

    @property
    def output_path(self) -> Path:
        """The output file: `output.path`, or `out/<config name>.<format>` beside the config (`.gif`
        for a folder of frames too, as it always was: its frames folder stays where it was)."""
        output = self.animation.output
        if output.path:
            return self.base_dir / output.path
        suffix = format_suffix(output.format or "gif") or ".gif"
        return self.base_dir / "out" / f"{Path(self.source).stem}{suffix}"

    @property
    def dream_model(self) -> str:
        """`dream.model`: a zoo name, or a model file's path (relative ones from the config's folder)."""
        model = self.animation.dream.model
        return str(self.base_dir / model) if names_model_file(model) else model

    @property
    def weights_file(self) -> Path | None:
        """The weights file `dream.weights` names (relative paths are from the config's folder), or
        None where it is a keyword (imagenet, none, bundled) or unset (the model's own)."""
        weights = self.animation.dream.weights
        return self.base_dir / weights if names_weights_file(weights) else None

    @property
    def output_format(self) -> str:
        """gif, mp4 or frames: `output.format`, else the output path's suffix."""
        from animator.video import FORMATS

        fmt = self.animation.output.format
        return fmt or FORMATS.get(self.output_path.suffix.lower(), "frames")

    @property
    def frames_dir(self) -> Path:
        """`<output>.frames/`, where each frame's PNG and the resume state live."""
        out = self.output_path
        return out.with_name(out.name + ".frames")

    @functools.cached_property
    def _schedules(self) -> dict:
        dream = self.animation.dream
        return {key: self._parsed.get(key) or schedule.parse(getattr(dream, key), f"dream.{key}")
                for key in SCHEDULED if getattr(dream, key) not in (None, "auto")}

    def sample_frames(self, count: int = 1000) -> list[int]:
        """The frames at which to check the schedules (`schedule.sample_frames`)."""
        return schedule.sample_frames(self.animation.frames, self._schedules.values(), count)

    def dream_settings(self, t: int) -> DreamSettings:
        """The dream settings at frame `t` (schedules evaluated; integers rounded)."""
        values = {key: value(t) for key, value in self._schedules.items()}
        for key in values:
            if params.DREAM[key].annotation is int:
                values[key] = int(round(values[key]))
        return DreamSettings(normalisation=self.animation.dream.normalisation, frame=t, **values)

    def fingerprint(self) -> str:
        """A hash of everything that decides the frames' pixels (not the output's options).

        Resuming a render is only allowed when this matches, so that the frames before and after
        the interruption belong to the same animation. The frame count and fps may change, and so
        may a plugin file's code (`plugin_digests`): a plugin that failed must be fixable without
        losing the frames already rendered.
        """
        data = self.animation.model_dump(mode="json", exclude={"frames", "fps", "output"})
        data["input_file"] = file_digest(self.input_path) if self.input_path else None
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def effective(self, absolute: bool = True) -> dict:
        """Every setting with its default filled in (transforms' parameters too) and, with
        `absolute`, every path absolute: written as YAML (`effective_yaml`), it renders the same
        frames from anywhere."""
        data = self.animation.model_dump(mode="json")
        data["transforms"] = [self._full_step(item, step)
                              for item, step in zip(self.animation.transforms, self.chain.steps)]
        if not absolute:
            return data
        data = absolute_files(data, self.base_dir)
        data["output"]["path"] = str(self.output_path.absolute())
        return data

    def effective_yaml(self) -> str:
        """`effective()` as YAML, headed by how to use it."""
        text = yaml.safe_dump(self.effective(), sort_keys=False, allow_unicode=True)
        # a file name of bytes that are no UTF-8 (Linux allows them) holds lone surrogates, which
        # YAML escapes in values but a comment cannot hold
        name = self.output_path.name.encode("utf-8", "backslashreplace").decode("utf-8")
        return f"# The settings of {name}: `animator render THIS.yaml` makes it again.\n{text}"

    def frame_settings(self) -> str:
        """What decides the frames' pixels (as `fingerprint` counts it: not the frame count, the
        rate or the output), defaults filled in, paths as written, as YAML: each frame PNG's
        text, identical for every frame of one animation wherever it is rendered."""
        data = {key: value for key, value in self.effective(absolute=False).items()
                if key not in ("frames", "fps", "output")}
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)

    def _full_step(self, item, step) -> dict:
        name, given = (item, {}) if isinstance(item, str) else next(iter(item.items()))
        defaults = {p.name: _plain(p.default) for p in step.transform.params if not p.required}
        return {str(name): {**defaults, **(given or {})}}

    def plugin_digests(self) -> dict[str, str | None]:
        """A hash of each plugin file's content, by the name the config gives it: the files under
        `plugins:` and those of transforms named `file.py:name` (`map_files` says which)."""
        named = files_named(self.animation.model_dump(mode="json", include={"plugins", "transforms"}))
        return {file: file_digest(self.base_dir / file) for file in named.values()
                if (self.base_dir / file).is_file()}


# --- the settings that name files -------------------------------------------------------------


def names_model_file(model) -> bool:
    """`dream.model` names a model file (else a zoo name)."""
    from animator.models import MODEL_FILE_SUFFIXES

    return isinstance(model, str) and model.endswith(MODEL_FILE_SUFFIXES)


def names_weights_file(weights) -> bool:
    """`dream.weights` names a weights file (else a keyword, or unset: the model's own)."""
    from animator.models import BUNDLED, IMAGENET

    return isinstance(weights, str) and weights not in ("none", BUNDLED, IMAGENET)


def map_files(data: Mapping, change: Callable[[str, str], str]) -> dict:
    """A copy of a config's mapping (as parsed, checked or not) with each file it names replaced by
    `change(key path, file)`: the input image or video, plugin files, a transform named from a
    file (`file.py:name`: the file), a model file, a weights file.

    The one place that says which settings name files: making them absolute (`absolute_files`)
    and the studio's check that they lie inside its folder both go through it.
    """
    from transforms.plugins import is_file_spec

    data = copy.deepcopy(dict(data))
    source = data.get("input")
    if isinstance(source, str):
        data["input"] = change("input", source)
    elif isinstance(source, dict) and isinstance(source.get("video"), str):
        source["video"] = change("input.video", source["video"])
    if isinstance(data.get("plugins"), list):
        data["plugins"] = [change(f"plugins[{index}]", spec) if isinstance(spec, str) and is_file_spec(spec)
                           else spec for index, spec in enumerate(data["plugins"])]
    if isinstance(data.get("transforms"), list):
        data["transforms"] = [_step_file(item, functools.partial(change, f"transforms[{index}]"))
                              for index, item in enumerate(data["transforms"])]
    dream = data.get("dream")
    if isinstance(dream, dict):
        if names_model_file(dream.get("model")):
            dream["model"] = change("dream.model", dream["model"])
        if names_weights_file(dream.get("weights")):
            dream["weights"] = change("dream.weights", dream["weights"])
    return data


def _step_file(item, change: Callable[[str], str]):
    """A transform step named `file.py:name` with its file changed; any other step as it is."""
    from transforms.plugins import is_file_spec

    if isinstance(item, dict) and len(item) == 1:
        ((name, given),) = item.items()
    elif isinstance(item, str):
        name, given = item, None
    else:
        return item
    file, colon, short = str(name).rpartition(":")
    if not colon or not is_file_spec(file):
        return item
    renamed = f"{change(file)}:{short}"
    return {renamed: given} if isinstance(item, dict) else renamed


def files_named(data: Mapping) -> dict[str, str]:
    """The files a config's mapping names (`map_files`), by key path (`input`, `input.video`,
    `plugins[0]`, `transforms[2]`, `dream.model`, `dream.weights`)."""
    found = {}
    map_files(data, lambda key, file: found.setdefault(key, file))
    return found


def absolute_files(data: Mapping, base_dir: str | Path) -> dict:
    """A copy of a config's mapping with the files it names (`map_files`) made absolute (relative
    ones are from `base_dir`, the config's folder), so that it means the same from any folder."""
    return map_files(data, lambda key, file: str((Path(base_dir) / file).absolute()))


def _plain(value):
    """A default as YAML writes it plainly: tuples as lists."""
    return [_plain(v) for v in value] if isinstance(value, tuple) else value


def file_digest(path: Path) -> str | None:
    """16 hex digits of a hash of a regular file's content; None if it is not one or cannot be read."""
    if not path.is_file():  # a pipe could block the read forever
        return None
    digest = hashlib.sha256()
    try:  # in chunks: an input video may be larger than the memory
        with open(path, "rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()[:16]


# --- loading --------------------------------------------------------------------------------


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
    io.check_is_file(path, "config", ConfigError)
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


def from_mapping(data: dict, base_dir: str | Path = ".", source: str = "<config>") -> Config:
    """Validate an already-parsed mapping (the YAML's content) into a Config."""
    from transforms import build_chain, load_plugins

    _check_extent(data, source)
    problems, animation, chain, schedules = [], None, None, {}
    try:  # each dream schedule is parsed once, here, into `schedules`
        animation = Animation.model_validate(data, context=schedules)
    except ValidationError as error:
        problems.extend(validation_problems(error, data))
    base_dir = Path(base_dir)
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
    return Config(animation, base_dir, source, chain, schedules)


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
        problem = io.path_problem(base_dir / file)
        if problem:
            problems.append((key, f"{key}: cannot use the path {excerpt(file)} ({problem})"))
    return problems


def _objective_problems(dream: Dream) -> list[tuple[str, str]]:
    """The objective's terms checked (their weights are schedules): (key path, problem) each."""
    from animator import objective

    problems = []
    for name, check in (("layers", lambda: objective.parse_layers(dream.layers, path="dream.layers")),
                        ("objective", lambda: objective.parse_items(dream.objective))):
        if getattr(dream, name) and not (name == "objective" and isinstance(dream.objective, str)):
            try:
                check()
            except ConfigError as error:
                problems.append((f"dream.{name}", str(error)))
    return problems


def _check_length(text: str, what: str) -> None:
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{what} is {len(text):,} characters long, over the limit of "
                          f"{MAX_CONFIG_BYTES:,}")


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
    from animator.video import FORMATS

    suffix = Path(output.path or "").suffix.lower()
    if not suffix or suffix in FORMATS or output.format is not None:
        return []
    return [("output.path", f"output.path: cannot write '{output.path}': unsupported suffix "
                            f"'{suffix}'; use {', '.join(FORMATS)}, or a name without a suffix (or "
                            "set output.format) for a folder of frames")]


def _frames_or_default(data: dict) -> int:
    frames = data.get("frames")
    valid = isinstance(frames, int) and not isinstance(frames, bool) and frames > 0
    return frames if valid else params.default("animation", "frames")


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
        path = ".".join(str(p) for p in loc) or "(top)"
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
