"""Small helpers shared by the test files (imported as `helpers`: tests/ is on sys.path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# The tests folder, and the repository root above it (configs/, scripts/, docs/).
TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def with_changes(base: dict, **changes) -> dict:
    """`base` with `section__key=value` (one level deep) or `key=value` replaced."""
    data = {key: dict(value) if isinstance(value, dict) else value for key, value in base.items()}
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            data[section] = {**data.get(section, {}), field: value}
        else:
            data[key] = value
    return data


def write_clip(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    """An MP4 of `frames` (uint8 H×W×3), losslessly encoded H.264 (yuv444p, qp 0): a still
    background decodes identically."""
    import imageio_ffmpeg

    height, width = frames[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(str(path), (width, height), fps=fps, codec="libx264",
                                         pix_fmt_out="yuv444p", output_params=["-qp", "0"],
                                         macro_block_size=1, ffmpeg_log_level="error")
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    return path


# A tiny render: 64x64 noise, one octave of two steps, a zoom (the render and API tests' base).
TINY_RENDER = {
    "input": {"noise": {"size": [64, 64], "seed": 3}},
    "frames": 6,
    "fps": 10,
    "seed": 1,
    "dream": {"model": "vgg16-hed", "octaves": 1, "steps": 2, "jitter": 8, "layers": {"block3_conv3": 1.0}},
    "transforms": [{"zoom": {"factor": 1.05}}],
}


def tiny_config(tmp_path: Path, name: str = "out.gif", **changes):
    """`TINY_RENDER` as a checked config writing into `tmp_path` (`changes`: see `with_changes`)."""
    from animator import config as config_module

    data = with_changes({**TINY_RENDER, "output": {"path": str(tmp_path / name)}}, **changes)
    return config_module.from_mapping(data, tmp_path, source=str(tmp_path / "tiny.yaml"))


def write_wav(path: Path, samples: np.ndarray, rate: int = 44_100) -> Path:
    """A 16-bit mono WAV of `samples` (-1..1)."""
    import wave

    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as stream:
        stream.setnchannels(1)
        stream.setsampwidth(2)
        stream.setframerate(rate)
        stream.writeframes(pcm.tobytes())
    return path


def audio_seconds(path: Path) -> float:
    """The decoded length of the first audio stream, from `ffmpeg -i ... -f null` (no ffprobe)."""
    import subprocess

    import imageio_ffmpeg

    done = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path),
                           "-map", "0:a:0", "-f", "null", "-"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-500:]
    hours, minutes, seconds = done.stderr.rpartition("time=")[2].split()[0].split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
