"""Where a render starts: a new one, or the resume point of the same animation (the checks that
nothing is lost or mixed), and the settings recorded beside its frames."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from animator.config import Config
from animator.media import images
from animator.renderer.state import FIRST_FILE, FrameStore
from animator.renderer.writes import _to_numpy
from animator.settings.errors import (
    ConfigError,
    OutputError,
    TooLarge,
)


@dataclass
class _Start:
    index: int
    frame: np.ndarray
    rng: np.random.Generator
    first: np.ndarray | None
    resumed: bool = False  # frame 0 again, over the frames of the same render (kept until replaced)


def _check_outputs(config: Config) -> None:
    out, source = config.output_path, config.input_path
    if source is not None and source.exists() and out.exists() and out.resolve() == source.resolve():
        raise OutputError(f"output '{out}' is the input image: choose another output.path")


def _starting_point(config: Config, store: FrameStore, resume: bool, force: bool, note,
                    starts) -> _Start:
    """Where to begin: the newest intact resume point, or frame 0 from the input (nothing written).

    Frame 0 replaces what the folder and the output hold only under `force`, or where they hold
    nothing: a resume with no intact resume point refuses rather than start over.
    """
    saved = store.latest_state() if resume else None
    if saved is not None:
        _check_same_render(config, store, saved, note)
    _check_memory(config, starts.source_size())
    if saved is None or saved.index == 0:  # the start's resume point is the input itself
        if saved is None and not force:
            _check_nothing_to_lose(config, store, resume)
        frame = starts.begin(0, note)
        _check_octaves(config, frame.shape[0], frame.shape[1])
        return _Start(0, frame, np.random.default_rng(config.seed), None, resumed=saved is not None)
    rng = np.random.default_rng()
    rng.bit_generator.state = saved.rng_state
    if saved.index < config.frames:
        starts.begin(saved.index, note)
    return _Start(saved.index, saved.frame, rng, store.load_first())


def _check_same_render(config: Config, store: FrameStore, saved, note) -> None:
    """Refuse to resume a render of another config (naming what changed); a plugin fixed after
    it failed is noted instead, and its new code recorded."""
    fingerprint, record = config.fingerprint(), _settings_record(config)
    changed = store.changed_keys(record)
    if saved.fingerprint != fingerprint:
        _refuse_changed(store, changed)
    plugins = [key for key in changed if key.startswith("plugin_files.")]
    if plugins and not store.plugin_failed():  # else new code would dream the frames after
        _refuse_changed(store, plugins)
    if plugins:  # a plugin fixed after it failed: frames from the failure on use its new code
        names = ", ".join(key.removeprefix("plugin_files.") for key in plugins)
        note(f"plugin {names} changed since the last run: frames from {saved.index} "
             "on use the new code")
        store.save_record(record, fingerprint)
    store.fingerprint = fingerprint


# Bytes a pixel of the frame takes in the loop: float32 RGB (12 bytes) for the start, the dream,
# its octave image and gradient, the transformed frame, the first frame (colour coherence), the
# resume point's copy, and uint8 copies for the PNG writers and the encoder: about 8 frames.
FRAME_BYTES_PER_PIXEL = 8 * 12


# Decoding: Pillow's image (up to 4 bytes a pixel) and its float32 RGB copy (12).
DECODE_BYTES_PER_PIXEL = 16


def _check_memory(config: Config, source: tuple[int, int]) -> None:
    """Refuse, before the input is decoded, frames whose memory does not fit: the decoded input
    (`source`: its width, height), the frame and its copies in the loop, and the dream's gradient
    (the memory budget, which tiles keep it within)."""
    from animator.engine import backend

    width, height = tuple(config.animation.size or source)
    frames = width * height * FRAME_BYTES_PER_PIXEL
    decode = source[0] * source[1] * DECODE_BYTES_PER_PIXEL
    dream = 0 if backend.has_accelerator() else backend.memory_budget()  # else on the device
    need, available = max(frames, decode) + dream, backend.host_memory()
    if need > available:
        what = f"size {width}x{height}" if config.animation.size else f"the input's {width}x{height}"
        raise TooLarge(f"frames of {what} need about {_gb(need)} of memory (the frame and its copies "
                       f"{_gb(max(frames, decode))}, the dream {_gb(dream)}), more than the "
                       f"{_gb(available)} available: set a smaller `size:`")


def _gb(count: int) -> str:
    return f"{count / 1e9:.1f} GB"


def _check_nothing_to_lose(config: Config, store: FrameStore, resume: bool) -> None:
    """Refuse to start a render over frames or an output that are there (only `force` may)."""
    out = config.output_path
    recorded = store.recorded_fingerprint()
    if resume and recorded is not None and recorded != config.fingerprint():
        _refuse_changed(store, store.changed_keys(_settings_record(config)))
    if not (out.exists() or store.has_frames()):
        return
    if resume:
        what = f"'{store.folder}' holds no intact resume point" if store.has_frames() else \
            f"there is no render to continue in '{store.folder}'"
        kept = f" ({store.frame_count()} frames kept)" if store.has_frames() else ""
        exists = f" and output '{out}' exists" if out.exists() else ""
        raise OutputError(f"cannot resume: {what}{kept}{exists}", remedy="force")
    what = f"output '{out}' exists" if out.exists() else \
        f"an unfinished render ({store.frame_count()} frames) is in '{store.folder}'"
    raise OutputError(what, remedy="resume_or_force")


def _refuse_changed(store: FrameStore, changed: list[str]) -> None:
    named = [_changed_name(key) for key in changed if key != "files"] or \
        ["a file it names, or a setting of an earlier version"]
    raise ConfigError(f"cannot resume: the config changed since '{store.folder}' was rendered "
                      f"({', '.join(named)})", remedy="undo_or_force")


def _changed_name(key: str) -> str:
    """A changed record key as a user reads it: `files.dream.guide` is that file's content."""
    for prefix in ("files.", "plugin_files."):
        if key.startswith(prefix):
            return f"the content of {key.removeprefix(prefix)}"
    return key


def _first_again(config: Config, dreamer, store: FrameStore, starts) -> np.ndarray:
    """Dream frame 0 again for the colour reference, and check it is the frame on disk."""
    dreamed, _ = dreamer.dream_frame(starts.first(lambda text: None), starts.settings(0),
                                     np.random.default_rng(config.seed))
    first = _to_numpy(dreamed)
    if not np.array_equal(images.rgb_uint8(first), store.first_frame_pixels()):
        raise OutputError(f"cannot resume: '{store.folder / FIRST_FILE}' is missing or damaged, "
                          "and dreaming frame 0 again does not give the frame on disk (another "
                          "machine or version?)", remedy="force")
    store.save_first(first)
    return first


def _begin(config: Config, store: FrameStore) -> None:
    """Replace whatever the folder holds with a new render's record."""
    store.clear()
    store.create()
    store.save_record(_settings_record(config), config.fingerprint())
    store.save_start()  # before frame 0: a kill at any moment from now on leaves a resume point


# The keyword of each frame PNG's text chunk that holds the settings that made it.
SETTINGS_KEY = "animator.config"


def settings_path(config: Config) -> Path:
    """Where the effective config is written: beside the output, `zoom.gif` -> `zoom.gif.yaml`."""
    return config.output_path.with_name(config.output_path.name + ".yaml")


def _keep_features(config: Config) -> None:
    """Keep the soundtrack's features beside the frames: a resumed render reads these values."""
    path = config.features_file
    if path is not None and not path.exists():
        config.soundtrack.save(path)


def _write_settings(config: Config, precision=None) -> str:
    """Write the effective config beside the output (every default filled in, so that the
    output can be made again from it), headed by the precision `auto` chose and why; returns
    the config's text, which an MP4 carries (as `assemble` writes it from the frames alone)."""
    text = config.effective_yaml()
    written = text
    if precision is not None and config.animation.dream.precision == "auto":
        header, _, rest = text.partition("\n")
        written = f"{header}\n# dream.precision auto chose {precision}\n{rest}"
    images.write_atomic(settings_path(config), lambda stream: stream.write(written.encode("utf-8")))
    return text


def _settings_record(config: Config) -> dict:
    from animator.config import NOT_PIXELS

    record = config.animation.model_dump(mode="json", exclude=NOT_PIXELS)
    return {**record, **config.heard_settings(), "files": config.file_digests(),
            "plugin_files": config.plugin_digests()}


def _check_octaves(config: Config, height: int, width: int) -> None:
    """Refuse, before any model is built, a size too small for any frame's octaves."""
    from animator.engine import models
    from animator.engine.dream import size_fix

    min_size = models.spec_for(config.dream_model).min_size
    for t in config.sample_frames():
        settings = config.dream_settings(t)
        fix = size_fix(height, width, settings, min_size)
        if fix:
            raise ConfigError(
                f"dream.octaves: {settings.octaves} octaves of scale {settings.octave_scale:g} "
                f"(frame {t}) make the smallest octave of a {width}x{height} frame smaller than "
                f"{config.animation.dream.model}'s {min_size} px: {fix}")
