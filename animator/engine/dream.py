"""DeepDream by gradient ascent over octaves: the orchestration around the compiled octave.

A frame is dreamed from its smallest octave up: each octave's base is the frame resized by
`octave_scale ** -k`; the detail the previous octave dreamed is scaled up and added back onto the
next base (detail re-injection, as in Google's DeepDream notebook), then `steps` steps of gradient
ascent run on it (`animator.engine.backend`). Frames are float32 H×W×3 RGB pixels in 0..255.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from animator.engine import models
from animator.engine.objective import make_objective
from animator.settings.dream import NORMALISATIONS, DreamSettings  # noqa: F401  (what a Dreamer takes)
from animator.settings.errors import ConfigError, ModelError
from animator.settings.params import DREAM, MAX_SIDE

DEFAULT_MODEL = DREAM["model"].default
_DEFAULT = {name: param.default for name, param in DREAM.items()}
# Steps per compiled call (see run_lengths): at most OCTAVE_CHUNK_STEPS, so a signal is seen
# within one call; FIRST_RUN_STEPS in the first frame of an unrolled (XLA:CPU) octave.
OCTAVE_CHUNK_STEPS = 20
FIRST_RUN_STEPS = 2
# The longest side, in pixels, at which a guide image is seen: its features at a deep layer are
# then at most a few thousand, each dotted with every position of a tile (Google's notebook: 224).
GUIDE_SIDE = 256




def run_lengths(steps: int, short: bool = False) -> list[int]:
    """The steps of each compiled call an octave of `steps` steps is dreamed in: as few runs of
    at most OCTAVE_CHUNK_STEPS (if `short`, FIRST_RUN_STEPS) as hold them, of lengths that
    differ by one at most, so that they share one compiled program where they can (45 steps:
    3 × 15, not 20, 20 and 5).

    Short runs are for a Dreamer's first frame when its octave is unrolled (XLA:CPU): such a
    program takes a time to load from the cache and first run that grows with its steps, so
    2-step programs bring the first frame twice as soon, while each call costs a little
    (the kernels laid out for the backward pass, fresh memory), so later frames run whole
    octaves (README, "The host pipeline, the first frame, the CPU floor").
    """
    longest = FIRST_RUN_STEPS if short else OCTAVE_CHUNK_STEPS
    count = -(-steps // longest)
    return [steps // count + (k < steps % count) for k in range(count)]


def octave_sizes(height: int, width: int, octaves: int, octave_scale: float) -> list[tuple[int, int]]:
    """The (height, width) of each octave in pixels, smallest first, the last one the frame's."""
    sizes = []
    for k in range(octaves - 1, -1, -1):
        factor = octave_scale ** -k
        sizes.append((max(1, round(height * factor)), max(1, round(width * factor))))
    return sizes


def smallest_side(height: int, width: int, settings: DreamSettings) -> int:
    """The smallest side of the smallest octave, in pixels."""
    return min(octave_sizes(height, width, settings.octaves, settings.octave_scale)[0])


def max_octaves(height: int, width: int, octave_scale: float, min_size: int) -> int:
    """How many octaves a frame of this size allows for a model that needs `min_size` pixels."""
    side = min(height, width)
    return max(1, int(math.floor(math.log(side / min_size, octave_scale))) + 1) if side >= min_size else 0


def size_fix(height: int, width: int, settings: DreamSettings, min_size: int) -> str | None:
    """None when the smallest octave is at least `min_size` pixels, else how to fix it."""
    if smallest_side(height, width, settings) >= min_size:
        return None
    side, octaves, scale = min(height, width), settings.octaves, settings.octave_scale
    allowed = max_octaves(height, width, scale, min_size)
    fixes = [f"octaves <= {allowed}"] if allowed else []
    # in logarithms: a ratio of 10 over 64 octaves is past any float
    needed_log = math.log(min_size) + (octaves - 1) * math.log(scale)
    if needed_log <= math.log(MAX_SIDE):  # else no size a config allows would do
        fixes.append(f"a size whose short side is at least {math.ceil(round(math.exp(needed_log), 6))} px")
    if octaves > 1 and side > min_size:
        largest = math.floor(100 * (side / min_size) ** (1 / (octaves - 1))) / 100
        if largest > 1:
            fixes.append(f"octave_scale <= {largest:g}")
    return "use " + " or ".join(fixes) if fixes else \
        f"use a size whose short side is at least {min_size} px and fewer octaves"


class Dreamer:
    """The dream engine: a model, an objective over its layers, and the compiled octave.

    >>> Dreamer(model="vgg16-hed", layers={"block4_conv3": 1.0}).dream(pixels, steps=5)

    `model`: a zoo name, a .keras/.h5 file or a `keras.Model` (raw 0..255 RGB pixels in, unless
    `preprocess` says otherwise); `weights`: the model's default (None), "imagenet", "bundled",
    "none" or a file path; `layers`: a mapping `{layer[:channel]: weight}` or a string `a,b:0.5`;
    `objective`: mean or l2 (the layers' reduction), or the list of terms of
    `animator.engine.objective` (guide, tv, stay_near, more layers); `guide`: a guide image's path,
    which guides every dreamed layer; `precision`: auto, float32, bfloat16 or float16
    (half-precision compute, float32 frames; auto: `backend.choose_precision` for 256² frames),
    or the `backend.PrecisionChoice` a caller made for its frames' size; `self.precision`
    holds the choice and why;
    `xla`: compile the TensorFlow octave with XLA (None: on a GPU only); `tile_batch`: tiles
    per model call when a frame is tiled (None: see `tile_batch`).
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        weights: str | None = None,
        layers=None,
        objective=_DEFAULT["objective"],
        preprocess: str | None = None,
        precision=_DEFAULT["precision"],
        xla: bool | None = None,
        tile_batch: int | None = None,
        guide: str | None = None,
    ):
        from animator.engine import backend, compile_cache, trace_cache

        compile_cache.use_jax_cache()  # before the model is built: building compiles too
        self.spec = models.spec_for(model)
        self.model_name = self.spec.name
        self.precision = _precision(self.spec, precision)
        backbone = model if self.spec.default_weights == models.OBJECT \
            else models.build_backbone(model, weights, self.precision.precision)
        reduction, items = (objective, ()) if isinstance(objective, str) else ("mean", objective)
        # Looked up only when no layer is named: a custom model may have no default layers.
        self.objective = make_objective(
            layers, reduction, items, guide,
            default_layers=functools.partial(models.default_layers, model, backbone))
        self.model = models.feature_model(model, backbone, self.objective.layers, preprocess)
        self._check_channels()
        self._guides = {term.image: _read_guide(term.image) for term in self.objective.terms
                        if term.needs == "guide"}
        self._guide_features: dict = {}
        self._octave = backend.octave_function(self.model, self.objective, xla,
                                               trace_cache.model_source(model, self.spec, preprocess))
        self._short_runs = self._octave.unroll  # in the first frame (see run_lengths)
        self._backbone = backbone
        self.memory_budget = backend.memory_budget()
        if tile_batch is not None and tile_batch < 1:
            raise ConfigError(f"tile_batch: must be >= 1, got {tile_batch!r}")
        self._tile_batch = tile_batch
        self.accelerator = backend.has_accelerator()

    @functools.cached_property
    def bytes_per_pixel(self) -> float:
        """Forward activation bytes per input pixel up to the deepest dreamed layer (0: unknown)."""
        try:
            return models.activation_bytes_per_pixel(self._backbone, self.objective.layers)
        except Exception:  # a model file whose shapes cannot be inferred: tile conservatively
            return 0.0

    def tile_size(self, height: int, width: int, settings: DreamSettings) -> int:
        """The tile side for a frame: the settings' own, or chosen from the memory budget."""
        from animator.engine import backend

        if settings.tile_size is not None:
            return settings.tile_size
        if not self.bytes_per_pixel:
            return 512
        return backend.auto_tile_size(height, width, self.bytes_per_pixel, self.memory_budget)

    def tile_batch(self, height: int, width: int, tile_size: int) -> int:
        """Tiles per model call for a frame cut into `tile_size` tiles: the constructor's, else
        on a GPU as many as the memory budget holds (one call instead of many small ones keeps
        it busy), and 1 on a CPU. A whole frame is 1."""
        from animator.engine import backend

        if tile_size >= max(height, width):
            return 1
        if self._tile_batch is not None:
            return self._tile_batch
        if not self.accelerator or not self.bytes_per_pixel:
            return 1
        return backend.tile_batch(tile_size, self.bytes_per_pixel, self.memory_budget)

    def _check_channels(self) -> None:
        shapes = dict(zip(self.objective.layers, (tuple(o.shape) for o in self.model.outputs)))
        for term in self.objective.terms:
            if getattr(term, "channel", None) is None:
                continue
            channels = shapes[term.layer][-1]
            if channels is not None and term.channel >= channels:
                raise ModelError(
                    f"layer {term.layer} has {channels} channels (0..{channels - 1}); "
                    f"channel {term.channel} does not exist"
                )

    def check_size(self, height: int, width: int, settings: DreamSettings) -> None:
        """Refuse a frame whose smallest octave is below what the model accepts."""
        fix = size_fix(height, width, settings, self.spec.min_size)
        if fix:
            raise ConfigError(
                f"size {width}x{height} is too small for {settings.octaves} octaves of scale "
                f"{settings.octave_scale:g} on {self.model_name} (smallest octave must be >= "
                f"{self.spec.min_size} px): {fix}"
            )

    def dream(
        self,
        image,
        settings: DreamSettings | None = None,
        *,
        seed: int = 0,
        progress: Callable | None = None,
        **overrides,
    ) -> np.ndarray:
        """Dream a float H×W×3 RGB image (0..255) and return the dreamed pixels as numpy.

        `overrides` replace single settings: `dreamer.dream(pixels, steps=5, octaves=2)`.
        """
        from keras import ops

        settings = dataclasses.replace(settings or DreamSettings(), **overrides)
        frame, _ = self.dream_frame(image, settings, np.random.default_rng(seed), progress)
        return ops.convert_to_numpy(frame)

    def dream_frame(self, frame, settings: DreamSettings, rng: np.random.Generator,
                    progress: Callable | None = None):
        """Dream one frame that stays on the backend's device; returns (frame, Losses per step).

        `rng` draws the jitter rolls; `progress(octave, octaves)` is called after each octave.
        """
        from keras import ops

        frame = ops.convert_to_tensor(frame, "float32")
        height, width = int(frame.shape[0]), int(frame.shape[1])
        self.check_size(height, width, settings)
        sizes = octave_sizes(height, width, settings.octaves, settings.octave_scale)
        max_loss = math.inf if settings.max_loss is None else settings.max_loss
        weights = self.objective.weights(settings.frame)
        detail, losses = None, Losses()
        runs = run_lengths(settings.steps, self._short_runs)
        self._short_runs = False
        for k, size in enumerate(sizes):
            base = frame if size == (height, width) else _resize(frame, size)
            image = base if detail is None else base + _resize(detail, size)
            shifts = rng.integers(-settings.jitter, settings.jitter + 1, (settings.steps, 2))
            if settings.steps:
                tile = self.tile_size(*size, settings)
                image = self._ascend(image, shifts, runs, settings, tile, self.tile_batch(*size, tile),
                                     max_loss, losses, weights, self.objective_inputs(base))
            if k + 1 < len(sizes):  # the last octave's detail is not needed: a frame's pass saved
                detail = image - base
            if progress is not None:
                progress(k + 1, len(sizes))
        return image, losses

    def _ascend(self, image, shifts, runs: list[int], settings: DreamSettings, tile: int, batch: int,
                max_loss: float, losses: Losses, weights, inputs):
        """An octave's steps, one compiled call per run of `runs` (see run_lengths): between calls
        Python runs again, so a signal (a second Ctrl-C) is seen within one run, not one long
        octave."""
        start = 0
        for length in runs:
            part = shifts[start:start + length]
            start += length
            image, step_losses = self._octave(image, part, settings.step_size, tile,
                                              settings.normalisation, max_loss, batch, weights, inputs)
            losses.add(step_losses)
            if start < len(shifts) and math.isfinite(max_loss) and \
                    _exceeds(step_losses, max_loss):  # the octave stopped: so do later runs
                break
        return image

    def objective_inputs(self, base) -> dict:
        """The tensors the objective's terms read in an octave whose base image is `base`:
        the guides' features at its size (computed once per size), the base itself."""
        from animator.engine.objective import input_key

        inputs = {}
        for i, term in enumerate(self.objective.terms):
            if term.needs == "base":
                inputs[input_key(i)] = base
            elif term.needs == "guide":
                inputs[input_key(i)] = self.guide_features(term, tuple(base.shape[:2]))
        return inputs

    def guide_features(self, guide, size: tuple[int, int]) -> dict:
        """A guide's features per layer, seen at an octave of `size` (at most GUIDE_SIDE px)."""
        from keras import ops

        from animator.engine.backend import activations
        from animator.engine.objective import guide_features

        key = (guide.image, guide.layers, size)
        if key not in self._guide_features:
            scale = min(1.0, GUIDE_SIDE / max(size))
            shape = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
            pixels = _resize(ops.convert_to_tensor(self._guides[guide.image], "float32"), shape)
            outputs = dict(zip(self.objective.layers, activations(self.model(pixels[None], training=False))))
            self._guide_features[key] = guide_features([outputs[n] for n in guide.layers], guide.layers)
        return self._guide_features[key]

    def loss(self, image, frame: int = 0) -> float:
        """The objective on a whole image (no tiling; its own base), at frame index `frame`:
        for tests and diagnostics."""
        from keras import ops

        from animator.engine.backend import activations

        pixels = ops.convert_to_tensor(image, "float32")
        weights, inputs = self.objective.weights(frame), self.objective_inputs(pixels)
        outputs = activations(self.model(pixels[None], training=False))
        value = self.objective.tile_value(outputs, weights, inputs)
        if self.objective.has_image_terms:
            value = value + self.objective.image_value(pixels, weights, inputs)
        return float(ops.convert_to_numpy(value))


class Losses(Sequence):
    """The objective at each step of a frame, copied from the device only when first read
    (reading it every octave would make the host wait for the device)."""

    def __init__(self):
        self._parts, self._values = [], None

    def add(self, part) -> None:
        self._parts.append(part)
        self._values = None

    def _read(self) -> list[float]:
        if self._values is None:
            from keras import ops

            self._values = [float(v) for part in self._parts for v in ops.convert_to_numpy(part)]
        return self._values

    def __len__(self) -> int:
        return len(self._read())

    def __getitem__(self, index):
        return self._read()[index]


def _precision(spec: models.ModelSpec, precision, size: tuple[int, int] | None = None):
    """The PrecisionChoice for `precision` (a name, "auto" or a choice already made), `auto`
    chosen for frames of `size` (height, width; default 256²). The one place `auto` is resolved."""
    from animator.engine.backend import PrecisionChoice, choose_precision

    if isinstance(precision, PrecisionChoice):
        return precision
    if spec.default_weights == models.OBJECT:
        return PrecisionChoice("float32", "a keras.Model given as such computes in its own policy")
    return choose_precision(spec.name, size) if precision == "auto" else PrecisionChoice(precision, "as set")


def _exceeds(step_losses, max_loss: float) -> bool:
    from keras import ops

    return bool(np.max(ops.convert_to_numpy(step_losses)) > max_loss)


def _read_guide(path: str):
    from animator.media import images

    return images.read_image(path).pixels


def _resize(image, size: tuple[int, int]):
    from keras import ops

    if tuple(image.shape[:2]) == tuple(size):
        return image
    return ops.image.resize(image, size, interpolation="bilinear", antialias=True)


def make_dreamer(dream, base_dir: str | Path = ".", build: Callable[..., Dreamer] | None = None,
                 size: tuple[int, int] | None = None) -> Dreamer:
    """The one Dreamer factory: a Dreamer for a config's `dream:` section (`config.Dream`, or
    anything with its attributes: the `animator dream` command's options), files
    it names (a model, weights, guides) relative to `base_dir`. `build`, called with Dreamer's
    keyword arguments in its place, lets a caller reuse a Dreamer of equal arguments (the studio);
    `precision: auto` is chosen for frames of `size` (height, width)."""
    from animator.config import names_model_file, names_weights_file

    base = Path(base_dir)

    def guide(path: str | None) -> str | None:
        return None if path is None else str(base / path)

    objective = dream.objective
    if not isinstance(objective, str):
        objective = [{**item, "guide": guide(item["guide"])} if "guide" in item else item
                     for item in objective]
    model = str(base / dream.model) if names_model_file(dream.model) else dream.model
    weights = str(base / dream.weights) if names_weights_file(dream.weights) else dream.weights
    precision = _precision(models.spec_for(model), dream.precision, size)  # `auto` at this size
    return (build or Dreamer)(model=model, weights=weights, layers=dream.layers, objective=objective,
                              guide=guide(dream.guide), precision=precision,
                              xla=None if dream.xla == "auto" else dream.xla)
