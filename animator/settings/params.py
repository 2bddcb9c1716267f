"""One declaration per parameter: its type, range, default and one-line help, in one place.

The tables below declare the animation's top-level settings, the `dream:`, `color:` and `output:`
sections; a transform declares its parameters in its signature, ranges and help as `Annotated`
metadata the registry reads::

    def zoom(frame, ctx, factor: Annotated[float, Range(gt=0), "scale; > 1 zooms in"] = 1.05): ...

(annotated-types markers such as `Gt(0)` work too). From these come the config's checks (every
schedule over every frame of the render), `animator transforms`' listing, the command line's
options with their defaults, and `parameters()`, the listing a form or a notebook builds from
(with `transforms.parameters()` for the transforms).
This module is cheap to import: no Keras, no pydantic.
"""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass

import annotated_types

from animator.settings import schedule

__all__ = [
    "ANIMATION", "AUDIO", "COLOR", "DREAM", "OUTPUT", "REQUIRED", "SECTIONS", "VIDEO",
    "Parameter", "Range", "default", "parameters", "range_of",
]  # fmt: skip

REQUIRED = inspect.Parameter.empty
MAX_SIDE = 16384  # pixels: the longest side of a frame (`size:`), and so the widest roll worth taking
MAX_SEED = 2**32 - 1
MAX_STEPS = 100_000  # gradient steps in one octave: 3000 take minutes at 64×64 on a CPU


@dataclass(frozen=True)
class Range(annotated_types.Interval):
    """Bounds of a number: `Range(gt=0)`, `Range(ge=0, le=1)`. Pydantic understands it too."""

    def violation(self, value: float) -> str | None:
        """'must be > 0' when `value` is outside, else None."""
        ok = ((self.gt is None or value > self.gt) and (self.ge is None or value >= self.ge)
              and (self.lt is None or value < self.lt) and (self.le is None or value <= self.le))
        return None if ok else f"must be {self}"

    def __str__(self) -> str:
        bounds = [f"{op} {_number(v)}" for op, v in
                  ((">", self.gt), (">=", self.ge), ("<", self.lt), ("<=", self.le)) if v is not None]
        return " and ".join(bounds)


def _number(value) -> str:
    return f"{value:,}" if isinstance(value, int) and abs(value) >= 10_000 else f"{value:g}"


_BOUNDS = {annotated_types.Gt: "gt", annotated_types.Ge: "ge", annotated_types.Lt: "lt",
           annotated_types.Le: "le"}


def range_of(metadata) -> Range | None:
    """The bounds that `Annotated` metadata declares (Range, Interval, Gt, Ge, Lt, Le), or None."""
    bounds = {}
    for item in metadata:
        if isinstance(item, annotated_types.Interval):
            bounds.update({k: getattr(item, k) for k in ("gt", "ge", "lt", "le")
                           if getattr(item, k) is not None})
        elif type(item) in _BOUNDS:
            bounds[_BOUNDS[type(item)]] = getattr(item, _BOUNDS[type(item)])
    return Range(**bounds) if bounds else None


@dataclass(frozen=True)
class Parameter:
    """One parameter: name, type (an annotation), default (REQUIRED if none), range, help.

    `scheduled`: a number that may be a schedule of the frame index `t` (keyframes, expression),
    whose range is checked at every frame of the render when the config loads.
    `file`: for a setting that takes free text, whether that text names a file (True: a path,
    relative to the config's folder, that `config.map_files` hands to every rule about files,
    such as the studio's "inside its folder") or not (False: layer names). None: not free text.
    """

    name: str
    annotation: object = None
    default: object = REQUIRED
    range: Range | None = None
    help: str = ""
    scheduled: bool = False
    file: bool | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def choices(self) -> tuple | None:
        """The allowed values of a Literal type (or Literal | None), else None."""
        annotation = self.annotation
        if typing.get_origin(annotation) in (typing.Union, types.UnionType):
            annotation = next((a for a in typing.get_args(annotation) if a is not type(None)), None)
        if typing.get_origin(annotation) is typing.Literal:
            return typing.get_args(annotation)
        return None

    @property
    def type_name(self) -> str:
        """Readable type: float, tuple[float, float], reflect|wrap, f(n, t)."""
        return type_name(self.annotation)

    def as_dict(self) -> dict:
        """Plain data (JSON-ready) for a form: name, type, default, range bounds, help."""
        bounds = {k: getattr(self.range, k) for k in ("gt", "ge", "lt", "le")} if self.range else {}
        return {"name": self.name, "type": self.type_name,
                "default": None if self.required else self.default, "required": self.required,
                "choices": list(self.choices) if self.choices else None,
                "range": str(self.range) if self.range else None,
                **{k: v for k, v in bounds.items() if v is not None},
                "scheduled": self.scheduled, "help": self.help}

    def __str__(self) -> str:
        text = self.name
        if self.annotation is not None:
            text += f": {self.type_name}"
        if self.range is not None:
            text += f" ({self.range})"
        return text if self.required else f"{text} = {self.default!r}"


def type_name(annotation: object) -> str:
    """Readable name of an annotation: float, tuple[float, float], reflect|wrap, f(n, t)."""
    if getattr(annotation, "type_label", None):
        return annotation.type_label
    if typing.get_origin(annotation) is typing.Literal:
        return "|".join(str(choice) for choice in typing.get_args(annotation))
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " | ".join("none" if a is type(None) else type_name(a) for a in typing.get_args(annotation))
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _table(*items: Parameter) -> dict[str, Parameter]:
    return {item.name: item for item in items}


def _setting(name, annotation, default, help, range=None, scheduled=False, file=None) -> Parameter:
    return Parameter(name, annotation, default, range, help, scheduled, file)


# The top level of an animation's YAML (input, size, transforms, plugins are structured: config.py).
ANIMATION = _table(
    _setting("frames", int, 60, "number of frames", Range(gt=0, le=schedule.MAX_FRAMES)),  # 18 h at 15 fps
    # a GIF holds at most 655 s per frame, and ffmpeg's WebP encoder fails far below 0.01 fps
    _setting("fps", float, 15.0, "frames per second of the video", Range(ge=0.01, le=240)),
    _setting("seed", int, 0, "seed of every random choice (jitter, random transforms)",
             Range(ge=0, le=MAX_SEED)),
    _setting("max_pixels", int, 40_000_000, "largest input image, width × height pixels",
             Range(gt=0)),
    _setting("fit", typing.Literal["resize", "fit", "crop"], "resize",
             "how the input meets `size`: stretch, fit inside, or crop"),
)

DREAM = _table(
    _setting("model", str, "mobilenet_v2", "zoo name or .keras/.h5 file", file=True),
    _setting("weights", str | None, None, "imagenet | none | bundled | PATH (default: the model's own)",
             file=True),
    _setting("layers", dict[str, float | str | dict] | list[str] | str | None, None,
             "layers to dream, e.g. block4_conv3,block5_conv1:0.5 (LAYER[:CHANNEL][=WEIGHT]; in "
             "YAML a weight may be a schedule); default: the model's own", file=False),
    _setting("objective", typing.Literal["mean", "l2"] | list[dict], "mean",
             "what to maximise: mean or mean square (l2) of the activations; in YAML also a list "
             "of terms: guide, tv, stay_near, layers (see animator.config.objective)"),
    _setting("guide", str | None, None, "a guide image: the dream grows toward its features",
             file=True),
    # 64 octaves of the smallest useful ratio already span a 16384 px frame down to 32 px
    _setting("octaves", int, 3, "number of scales (1: the frame's size only)",
             Range(ge=1, le=64), True),
    _setting("octave_scale", float, 1.4, "size ratio between octaves", Range(gt=1, le=10), True),
    _setting("steps", int, 10, "gradient-ascent steps per octave", Range(ge=0, le=MAX_STEPS), True),
    _setting("step_size", float, 1.5, "grey levels per step", Range(ge=0), True),
    _setting("jitter", int, 32, "largest random roll, pixels", Range(ge=0, le=MAX_SIDE), True),
    _setting("tile_size", int, "auto",
             "largest tile side, pixels (auto: from the memory budget, whole frames when they fit)",
             Range(ge=32), True),
    _setting("max_loss", float | None, None, "stop an octave once the objective exceeds it",
             None, True),
    # held to 30: the frames between two dreams are kept on the device until the next one is made
    _setting("cadence", int, 1, "dream every Nth frame; the frames between are made by the "
             "transforms alone, cross-fading the dreams before and after (docs/cadence.md)",
             Range(ge=1, le=30), True),
    _setting("normalisation", typing.Literal["std", "mean_abs"], "std",
             "gradient normalisation: std (TensorFlow tutorial) or mean_abs (Google's notebook)"),
    _setting("precision", typing.Literal["auto", "float32", "bfloat16", "float16"], "auto",
             "the model's compute precision (frames stay float32); auto: bfloat16 where this "
             "device computes it natively and it measured faster for the model, else float32"),
    _setting("xla", typing.Literal["auto", True, False], "auto",
             "compile with XLA (TensorFlow only; auto: on a GPU)"),
)

COLOR = _table(
    _setting("coherence", typing.Literal["none", "match_first"], "match_first",
             "match_first: keep each frame's colours near the first frame's"),
    _setting("strength", float, 1.0, "how strongly colours are matched, 0..1", Range(ge=0, le=1)),
)

OUTPUT = _table(
    _setting("path", str | None, None,
             "output file (.gif, .webp, .mp4, .webm) or a folder (frames only); default: "
             "out/<config>.gif",
             file=True),
    _setting("format", typing.Literal["gif", "webp", "mp4", "webm", "frames"] | None, None,
             "gif | webp | mp4 | webm | frames (default: from the output's suffix)"),
    _setting("reverse", bool, False, "play the frames backwards"),
    _setting("pingpong", bool, False, "play forwards then backwards: a seamless loop"),
    _setting("loop", int, 0, "GIF/WebP loop count (0: forever)", Range(ge=0, le=65535)),
    _setting("quality", float, 8.0, "MP4/WebM/WebP quality 0..10 (MP4: crf 38..13; WebM: VP9 crf "
             "50..15; WebP: 0..100)", Range(ge=0, le=10)),
    # 1080p on a 2-core CPU: x264 encodes 2.3x faster with veryfast than with medium, for a
    # file of about the same size at the same crf (README, Speed): the encoder never bounds a render
    _setting("preset", typing.Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium",
                                      "slow", "slower", "veryslow"], "veryfast",
             "MP4 and WebM: the encoder's speed, fastest first (libx264's presets; WebM maps them "
             "onto VP9's speeds); slower ones make smaller files"),
    _setting("checkpoint_every", int | str, "10s",
             "the resume state every N frames (5) or seconds ('30s'), and when the render ends",
             file=False),
    _setting("palette", typing.Literal["shared", "per_frame"], "shared",
             "GIF palette: one for all frames (no flicker) or one per frame"),
    _setting("dither", bool, False, "GIF: dither colours (smoother gradients, larger file)"),
)

# How each frame of a video input (`input: {video: clip.mp4}`) carries the previous dream.
VIDEO = _table(
    _setting("blend", float, 0.8, "share of the previous dream carried into each frame: 0 dreams "
             "every frame from scratch, 1 carries all of it", Range(ge=0, le=1)),
    _setting("flow", typing.Literal["farneback", "none"], "farneback",
             "optical flow that moves the carried dream with the picture (none: carried in place)"),
    _setting("every", int, 1, "dream every Nth frame fully; frames between carry the dream along "
             "the flow", Range(ge=1)),
    _setting("carry_steps", int, 2, "steps per octave on the carried frames between full dreams",
             Range(ge=0, le=MAX_STEPS)),
)

# The output formats by file suffix; `frames` (a folder of PNGs) has none.
FORMATS = {".gif": "gif", ".webp": "webp", ".mp4": "mp4", ".webm": "webm"}
# The formats that carry sound (a soundtrack's, or a video input's): H.264 + AAC, VP9 + Opus.
SOUND_FORMATS = ("mp4", "webm")


def suffixes(sound: bool) -> list[str]:
    """The output suffixes whose formats carry sound (`sound`), or those whose formats do not."""
    return [suffix for suffix, kind in FORMATS.items() if (kind in SOUND_FORMATS) == sound]


# A model's `weights:` words, and the suffixes that make `model:` a saved model's file.
BUNDLED = "bundled"
IMAGENET = "imagenet"
MODEL_FILE_SUFFIXES = (".keras", ".h5")


# The soundtrack (`audio: {path: song.mp3, ...}`): which cut of it, and how its features move.
AUDIO = _table(
    _setting("start", float, 0.0, "seconds into the track to begin at", Range(ge=0)),
    _setting("end", float | None, None, "seconds into the track to stop at (default: its end)",
             Range(gt=0)),
    _setting("attack", float, 0.0, "frames a rising feature takes to close 90% of its way "
             "(0: at once)", Range(ge=0, le=1000)),
    _setting("release", float, 4.0, "frames a falling feature takes to close 90% of its way",
             Range(ge=0, le=1000)),
    _setting("beat_decay", int, 4, "frames over which `beat` falls from 1 to 0 after a beat",
             Range(ge=1, le=1000)),
)

SECTIONS = {"animation": ANIMATION, "dream": DREAM, "color": COLOR, "output": OUTPUT,
            "video": VIDEO, "audio": AUDIO}


def default(section: str, name: str):
    """The declared default of `section.name`, e.g. `default("dream", "steps")` -> 10."""
    return SECTIONS[section][name].default


def parameters() -> dict[str, tuple[Parameter, ...]]:
    """Every declared setting by section, for forms and documentation.

    Sections: 'animation' (top-level keys), 'dream', 'color', 'output', 'video'; the transforms'
    parameters are listed by `transforms.parameters()`. Each `Parameter` has name, annotation,
    default, range, help and `as_dict()`.
    """
    return {name: tuple(table.values()) for name, table in SECTIONS.items()}


def range_problem(parsed, bounds: Range, frames: int, path: str, integer: bool = False) -> str | None:
    """`path: must be > 0, got -0.2 at frame 900` if the schedule `parsed` leaves `bounds` at
    any of the render's `frames` (the first such frame), else None. `integer`: rounded first."""
    from animator.settings.errors import ConfigError
    from animator.settings.schedule import first_outside

    try:
        found = first_outside(parsed, lambda value: bounds.violation(value) is None, frames, integer)
    except ConfigError as error:  # not finite at some frame
        return str(error)
    if found is None:
        return None
    t, value = found
    where = "" if parsed.constant is not None else f" at frame {t}"
    return f"{path}: {bounds.violation(value)}, got {value:g}{where}"
