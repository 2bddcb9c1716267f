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

import numpy as np
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

from animator.media import images
from animator.settings import params, schedule
from animator.settings.dream import DreamSettings
from animator.settings.errors import AnimatorError, ConfigError, close_names, excerpt
from animator.settings.params import BUNDLED, FORMATS, IMAGENET, MODEL_FILE_SUFFIXES

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
# The settings that do not decide the frames' pixels: they may change when a render resumes.
NOT_PIXELS = frozenset({"frames", "fps", "output", "max_pixels"})
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


class Soundtrack(_declared_model("SoundtrackDeclared", params.AUDIO)):
    """The `audio:` section: a sound file (`audio: song.mp3` is `audio: {path: song.mp3}`), the
    cut of it from `start` to `end` (seconds), and how its features move (`animator.media.audio`)."""

    path: Annotated[str, Field(description="the sound file (MP3, WAV, FLAC, M4A, a video's "
                               "sound), relative to the config's folder")]

    @model_validator(mode="after")
    def _ordered(self):
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"audio.end must be after audio.start ({self.start:g} s), got {self.end:g}")
        return self


def _soundtrack_form(value):
    return {"path": value} if isinstance(value, str) else value


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

        suffix = Path(self.path or "").suffix.lower()
        named = FORMATS.get(suffix)
        if self.format in FORMATS.values() and named not in (None, self.format):
            raise ValueError(f"format {self.format} does not match the path's suffix {suffix} "
                             f"({self.path!r}): change one of them")
        return self


def _output_path(output: Output, base_dir: Path, source: str) -> Path:
    """`Config.output_path` of an `output:` section, for a config in `base_dir` read from `source`."""
    if output.path:
        return base_dir / output.path
    suffix = format_suffix(output.format or "gif") or ".gif"
    return base_dir / "out" / f"{Path(source).stem}{suffix}"


def format_suffix(format: str | None) -> str:
    """The file suffix of a video format (`webp` -> `.webp`), from `params.FORMATS`; '' for `frames`
    or anything that names no video format."""

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
    audio: Annotated[Soundtrack | None, BeforeValidator(_soundtrack_form),
                     Field(description="a soundtrack: its features are schedule variables "
                           "(loudness, onset, beat, bass, mid, treble), its sound goes into "
                           "an MP4")] = None

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
                 schedules: Mapping[str, schedule.Schedule] | None = None, soundtrack=None,
                 soundtrack_key: str = ""):
        """`schedules`: dream settings already parsed from `animation` (`from_mapping`'s);
        `soundtrack`: the `animator.media.audio.Features` of its `audio:` track (None without one),
        `soundtrack_key` a hash of what decides them."""
        self.animation = animation
        self.base_dir = base_dir
        self.source = source
        self.chain = chain
        self._parsed = dict(schedules or {})
        self.soundtrack = soundtrack
        self.soundtrack_key = soundtrack_key

    @property
    def features_file(self) -> Path | None:
        """Where a render keeps its soundtrack's features, beside the frames (None without one)."""
        if self.soundtrack is None or not self.soundtrack_key:
            return None
        return self.frames_dir / FEATURES_FILE.format(key=self.soundtrack_key)

    def signals(self):
        """A block in which schedules parse with this config's soundtrack features bound."""
        return schedule.signals(self.soundtrack.values if self.soundtrack is not None else {})

    @property
    def audio_path(self) -> Path | None:
        """The soundtrack's file (relative paths are from the config's folder), or None."""
        audio = self.animation.audio
        return None if audio is None else self.base_dir / audio.path

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
        return _output_path(self.animation.output, self.base_dir, self.source)

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
        with self.signals():
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
        data = self.animation.model_dump(mode="json", exclude=NOT_PIXELS)
        data["input_file"] = file_digest(self.input_path) if self.input_path else None
        if self.audio_path is not None:  # the features at each frame depend on the rate
            from animator.media.audio import VERSION

            data.update(audio_file=file_digest(self.audio_path), fps=self.animation.fps,
                        audio_features=VERSION)
        others = {key: digest for key, digest in self.file_digests().items()
                  if key not in ("input", "input.video")}  # the input's is `input_file`
        if others:  # left out where there are none, so that such renders keep their fingerprint
            data["files"] = others
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def file_digests(self) -> dict[str, str | None]:
        """A hash of the content of each file that decides the pixels (`file_digest`), by its key
        path: the input, the guide images, a model file, a weights file (`files_named`), not the
        plugins (`plugin_digests`)."""
        data = self.animation.model_dump(mode="json")
        named = {key: file for key, file in files_named(data).items()
                 if key in ("input", "input.video", "dream.model", "dream.weights") or "guide" in key}
        for key, file in guide_files(data).items():
            named.setdefault(key, file)
        return {key: file_digest(self.base_dir / file) for key, file in named.items()}

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
                if key not in NOT_PIXELS}
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)

    def _full_step(self, item, step) -> dict:
        from transforms import read_step

        spec = read_step(item)
        defaults = {p.name: _plain(p.default) for p in step.transform.params if not p.required}
        return {spec.written: {**defaults, **(spec.params or {})}}

    def plugin_digests(self) -> dict[str, str | None]:
        """A hash of each plugin file's content, by the name the config gives it: the files under
        `plugins:` and those of transforms named `file.py:name` (`map_files` says which)."""
        named = files_named(self.animation.model_dump(mode="json", include={"plugins", "transforms"}))
        return {file: file_digest(self.base_dir / file) for file in named.values()
                if (self.base_dir / file).is_file()}


# --- the settings that name files -------------------------------------------------------------


def names_model_file(model) -> bool:
    """`dream.model` names a model file (else a zoo name)."""
    return isinstance(model, str) and model.endswith(MODEL_FILE_SUFFIXES)


def names_weights_file(weights) -> bool:
    """`dream.weights` names a weights file (else a keyword, or unset: the model's own)."""
    return isinstance(weights, str) and weights not in ("none", BUNDLED, IMAGENET)


def names_file(key: str, value) -> bool:
    """Whether `value`, given to the file setting at `key` (a key path), is a file's path rather
    than one of the setting's keywords (a zoo model's name, `imagenet` weights)."""
    keywords = {"dream.model": names_model_file, "dream.weights": names_weights_file}
    return keywords[key](value) if key in keywords else isinstance(value, str)


def map_files(data: Mapping, change: Callable[[str, str], str]) -> dict:
    """A copy of a config's mapping (as parsed, checked or not) with each file it names replaced by
    `change(key path, file)`: the input image or video, plugin files, a transform named from a
    file (`file.py:name`: the file), every setting the declarations mark as naming a file
    (`params.Parameter.file`: a model or weights file, a guide image, the output), and the guide
    images of an `objective:` list (its items' keys take the dream settings' declarations), and
    the soundtrack.

    The one place that says which settings name files: making them absolute (`absolute_files`),
    the studio's check that they lie inside its folder, and the content hashes of resume all go
    through it.
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
    for section, table in params.SECTIONS.items():
        node = data if section == "animation" else data.get(section)
        prefix = "" if section == "animation" else f"{section}."
        for name in [name for name, p in table.items() if p.file] if isinstance(node, dict) else []:
            if names_file(prefix + name, node.get(name)):
                node[name] = change(prefix + name, node[name])
    audio = data.get("audio")
    if isinstance(audio, str):
        data["audio"] = change("audio", audio)
    elif isinstance(audio, dict) and isinstance(audio.get("path"), str):
        audio["path"] = change("audio.path", audio["path"])
    dream = data.get("dream")
    if isinstance(dream, dict) and isinstance(dream.get("objective"), list):
        dream["objective"] = [_item_files(item, f"dream.objective[{index}]", change)
                              for index, item in enumerate(dream["objective"])]
    return data


def _item_files(item, path: str, change: Callable[[str, str], str]):
    """An `objective:` item with the files it names changed: its keys that are also dream settings
    declared as files (`guide`). The objective reads any value as a path (`str(value)`)."""
    if not isinstance(item, dict):
        return item
    return {key: change(f"{path}.{key}", str(value))
            if value is not None and getattr(params.DREAM.get(str(key)), "file", None) else value
            for key, value in item.items()}


def _step_file(item, change: Callable[[str], str]):
    """A transform step named `file.py:name` with its file changed; any other step as it is."""
    from transforms import read_step

    try:
        spec = read_step(item)
    except ConfigError:  # not a step: the config's check says so
        return item
    return spec.item(change(spec.plugin)) if spec.names_file else item


def guide_files(data: Mapping) -> dict[str, str]:
    """The guide images a config's mapping names, by key path (`dream.guide`,
    `dream.objective[1].guide`)."""
    dream = data.get("dream") if isinstance(data.get("dream"), Mapping) else {}
    found = {"dream.guide": dream["guide"]} if isinstance(dream.get("guide"), str) else {}
    objective = dream.get("objective")
    for index, item in enumerate(objective if isinstance(objective, list) else []):
        if isinstance(item, Mapping) and isinstance(item.get("guide"), str):
            found[f"dream.objective[{index}].guide"] = item["guide"]
    return found


def files_named(data: Mapping) -> dict[str, str]:
    """The files a config's mapping names (`map_files`), by key path (`input`, `input.video`,
    `plugins[0]`, `transforms[2]`, `dream.model`, `dream.weights`, `dream.guide`,
    `dream.objective[1].guide`, `output.path`, `audio.path`)."""
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
    _check_extent(data, source)
    base_dir = Path(base_dir)
    data, soundtrack, key, problems = _with_soundtrack(data, base_dir, source)
    with schedule.signals(soundtrack.values if soundtrack is not None else {}):
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


# The soundtrack's features of recent loads, by what decides them: a studio validates a form often.
_FEATURES_KEPT: dict[str, object] = {}
FEATURES_FILE = "audio-{key}.npz"  # in the frames folder: a resumed render reads the same values


def _with_soundtrack(data: dict, base_dir: Path, source: str) -> tuple[dict, object, str, list]:
    """(data, features, key, problems): the `audio:` track's features for each frame, computed once
    (or read from beside the frames); without `frames:` the frame count is the cut's length, and
    the frame rate is the config's (a clip's own does not replace it). A track that cannot be
    used is a problem, and its features zeros, so that the rest is checked too."""
    if data.get("audio") is None:
        return data, None, "", []
    from animator.media import audio

    try:
        track = Soundtrack.model_validate(_soundtrack_form(data["audio"]))
    except ValidationError:  # reported by the whole file's validation
        return data, _silence(data), "", []
    # a frame count or rate out of range is the model's to report: here, only bounds the work
    fps = data["fps"] if _declared_value("fps", data.get("fps")) else params.default("animation", "fps")
    frames = data["frames"] if _declared_value("frames", data.get("frames")) else None
    settings = {**track.model_dump(exclude={"path"}), "fps": fps, "frames": frames}
    path = base_dir / track.path
    key = hashlib.sha256(json.dumps([file_digest(path), settings, audio.VERSION],
                                    sort_keys=True).encode()).hexdigest()[:16]
    try:
        features = _features(path, key, settings, _cache_dir(data, base_dir, source))
    except (AnimatorError, ModuleNotFoundError) as error:
        return data, _silence(data), "", [("audio", f"audio: {error}")]
    data = {**data, "fps": data.get("fps", fps)}
    data.setdefault("frames", features.frames)
    return data, features, key, []


def _declared_value(name: str, value) -> bool:
    """`value` is a number within the top-level setting `name`'s declared range."""
    param = params.ANIMATION[name]
    return schedule.is_number(value) and param.range.violation(value) is None and (
        param.annotation is not int or isinstance(value, int))


def _features(path: Path, key: str, settings: dict, cache: Path | None):
    from animator.media import audio

    cached = _FEATURES_KEPT.get(key)
    if cached is None and cache is not None and (cache / FEATURES_FILE.format(key=key)).is_file():
        cached = audio.Features.load(cache / FEATURES_FILE.format(key=key))
    if cached is None:
        cached = audio.analyse(path, **settings)
    _FEATURES_KEPT.clear()  # one track kept: a long one's features are megabytes
    _FEATURES_KEPT[key] = cached
    return cached


def _cache_dir(data: dict, base_dir: Path, source: str) -> Path | None:
    try:
        out = _output_path(Output.model_validate(data.get("output") or {}), base_dir, source)
    except (ValidationError, TypeError):
        return None
    return out.with_name(out.name + ".frames")


def _silence(data: dict):
    from animator.media.audio import FEATURES, Features

    frames = _frames_or_default(data)
    return Features(1.0, 0.0, 0.0, np.zeros(0, np.int64), {name: np.zeros(frames) for name in FEATURES})


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
