"""A render's output: the GIF, WebP, MP4 or WebM assembled from its frames with its sound, and what a
dry run says of it before anything is dreamed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from animator.config import Config
from animator.renderer import sources
from animator.renderer.start import _check_octaves
from animator.settings.errors import (
    OutputError,
)


def add_soundtrack(config: Config, output: Path | None, frames: int, note,
                   format: str | None = None) -> None:
    """Put the soundtrack's cut, as long as the `frames` rendered, into `output` (see
    `sources.add_sound`); nothing without a soundtrack."""
    if config.audio_path is not None:
        sources.add_sound(config, output, config.audio_path, config.animation.audio.start, frames,
                          note, format)


def assemble(config: Config) -> Path | None:
    """Write the GIF, WebP, MP4 or WebM from the frames folder (None for format `frames`)."""
    from animator.media import video

    if config.output_format == "frames":
        return None
    arguments = assemble_arguments(config)
    try:
        video.assemble(**arguments)
    except (OutputError, OSError, RuntimeError) as error:  # ffmpeg missing or failing, disk full
        what = error.message if isinstance(error, OutputError) else str(error)
        raise OutputError(f"{what}: every frame is kept in '{config.frames_dir}'", remedy="assemble",
                          facts=arguments) from error
    return config.output_path


def assemble_arguments(config: Config) -> dict:
    """`animator.media.video.assemble`'s arguments that make this config's output from its frames."""
    options = config.animation.output
    return {"frames": str(config.frames_dir), "out": str(config.output_path), "fps": config.animation.fps,
            **{key: getattr(options, key) for key in VIDEO_OPTIONS}, "format": config.output_format,
            "comment": config.effective_yaml()}


# The output options that decide how the frames become a video.
VIDEO_OPTIONS = ("reverse", "pingpong", "loop", "quality", "preset", "palette", "dither")


def _planned_size(config: Config) -> tuple[int, int] | None:
    """The frames' (width, height) if known without reading the input image, else None."""
    animation = config.animation
    if animation.size is not None and animation.fit != "fit":
        return tuple(animation.size)
    if config.input_path is None and animation.size is None:
        return tuple(animation.input.noise.size)
    return None


def _soundtrack_line(config: Config) -> list[str]:
    track = config.soundtrack
    if track is None:
        return []
    return [f"audio: {config.audio_path} ({track.seconds:.1f} s from {config.animation.audio.start:g} s, "
            f"{track.tempo:.1f} BPM, {len(track.beats)} beats)"]


def describe(config: Config) -> str:
    """The resolved settings and the expected cost, for `--dry-run`."""
    starts = sources.open_source(config)
    config = starts.config  # a video's frame count and rate are its clip's
    animation = config.animation
    size = _planned_size(config)
    if size is not None:  # a dry run says now what the render would refuse
        _check_octaves(config, size[1], size[0])
    sampled = config.sample_frames()
    exact = len(sampled) == animation.frames  # else an estimate from evenly spaced frames
    picks = sampled if exact else [round(t) for t in np.linspace(0, animation.frames - 1, 1000)]
    with starts:
        steps = [starts.settings(t) for t in picks]
    if exact:  # the frames between dreams (dream.cadence) cost no step
        from animator.renderer.cadence import dreamed_frames

        dreamed = set(dreamed_frames(config))
        total_steps = sum(s.octaves * s.steps for t, s in zip(picks, steps) if t in dreamed)
    else:
        total_steps = round(sum(s.octaves * s.steps / s.cadence for s in steps)
                            * animation.frames / len(picks))
    lines = [
        f"config: {config.source}",
        f"input: {config.input_path or 'noise ' + json.dumps(animation.input.noise.model_dump())}",
        f"output: {config.output_path} ({config.output_format}), frames in {config.frames_dir}",
        f"output options: {json.dumps(animation.output.model_dump(mode='json', exclude={'path'}))}",
        f"frames: {animation.frames} at {animation.fps:g} fps "
        f"({animation.frames / animation.fps:.1f} s of video)",
        f"dream: {json.dumps(animation.dream.model_dump(exclude_none=True))}",
        f"transforms: {', '.join(config.chain.names) or 'none'}",
        *_soundtrack_line(config),
        f"cost: {'' if exact else 'about '}{total_steps} gradient steps "
        f"({total_steps // max(1, animation.frames)} per frame)",
    ]
    return "\n".join(lines)
