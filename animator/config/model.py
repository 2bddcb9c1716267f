"""The YAML model: frozen pydantic sections made from the declarations (`settings.params`),
and `Config`, a checked animation with its folder, chain and parsed schedules."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from animator.config.files import (
    VIDEO_SUFFIXES,
    _plain,
    absolute_files,
    file_digest,
    files_named,
    guide_files,
    names_model_file,
    names_weights_file,
)
from animator.settings import params, schedule
from animator.settings.dream import DreamSettings
from animator.settings.errors import ConfigError
from animator.settings.params import FORMATS

MAX_FRAMES = params.ANIMATION["frames"].range.le

MAX_CONFIG_BYTES = 256 * 1024  # a long config is a few kilobytes; YAML parses ~100 KB/s in Python


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


class VideoInput(Strict):
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

    input: str | NoiseInput | VideoInput
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
        return schedule.signals({} if self.soundtrack is None
                                else self.soundtrack.by_frame(self.animation.output.reverse))

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
        if isinstance(self.animation.input, VideoInput):
            return self.base_dir / self.animation.input.video
        return None

    @property
    def video_input(self) -> VideoInput | None:
        """The `input: {video: ...}` section, or None for an image or noise input."""
        return self.animation.input if isinstance(self.animation.input, VideoInput) else None

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

    def played_seconds(self, frames: int) -> float:
        """How long the output plays with `frames` rendered, in the order the output plays them
        (`animator.media.video.frame_order`: a ping-pong's way back included)."""
        from animator.media.video import frame_order

        output = self.animation.output
        return len(frame_order(frames, output.reverse, output.pingpong)) / self.animation.fps

    @property
    def output_format(self) -> str:
        """gif, webp, mp4, webm or frames: `output.format`, else the output path's suffix."""

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

            data.update(audio_file=file_digest(self.audio_path), audio_features=VERSION,
                        **self.heard_settings())
        others = {key: digest for key, digest in self.file_digests().items()
                  if key not in ("input", "input.video")}  # the input's is `input_file`
        if others:  # left out where there are none, so that such renders keep their fingerprint
            data["files"] = others
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def heard_settings(self) -> dict:
        """The settings, otherwise free to change, that decide which moment of the soundtrack each
        frame hears (`Features.by_frame`), by their key paths: the frame rate, and for a reversed
        output the frame count (frame i is seen at frames - 1 - i); none without a soundtrack."""
        if self.audio_path is None:
            return {}
        if not self.animation.output.reverse:
            return {"fps": self.animation.fps}
        return {"fps": self.animation.fps, "frames": self.animation.frames, "output.reverse": True}

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


def _frames_or_default(data: dict) -> int:
    frames = data.get("frames")
    valid = isinstance(frames, int) and not isinstance(frames, bool) and frames > 0
    return frames if valid else params.default("animation", "frames")


FEATURES_FILE = "audio-{key}.npz"  # in the frames folder: a resumed render reads the same values
