"""The soundtrack's features for a config with `audio:`: analysed once at load (so the range
checks see their values), kept beside the frames, read back on resume."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from pydantic import (
    ValidationError,
)

from animator.config.files import file_digest
from animator.config.model import (
    FEATURES_FILE,
    Output,
    Soundtrack,
    _frames_or_default,
    _output_path,
    _soundtrack_form,
)
from animator.settings import params, schedule
from animator.settings.errors import AnimatorError

# The soundtrack's features of recent loads, by what decides them: a studio validates a form often.
_FEATURES_KEPT: dict[str, object] = {}


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


def _signal_values(data: dict, features) -> dict[str, np.ndarray]:
    """The features, one value per frame rendered, that the schedules of `data` read
    (`Features.by_frame`: a reversed output's frames hear the moment they are seen)."""
    if features is None:
        return {}
    output = _output(data)
    return features.by_frame(output is not None and output.reverse)


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


def _output(data: dict) -> Output | None:
    """The `output:` section of `data`, or None where it is invalid (the whole file's validation
    reports it)."""
    try:
        return Output.model_validate(data.get("output") or {})
    except (ValidationError, TypeError):
        return None


def _cache_dir(data: dict, base_dir: Path, source: str) -> Path | None:
    output = _output(data)
    if output is None:
        return None
    out = _output_path(output, base_dir, source)
    return out.with_name(out.name + ".frames")


def _silence(data: dict):
    from animator.media.audio import FEATURES, Features

    frames = _frames_or_default(data)
    return Features(1.0, 0.0, 0.0, np.zeros(0, np.int64), {name: np.zeros(frames) for name in FEATURES})
