"""A video input that cannot be dreamed: the error holds the facts, its fix travels as a remedy
that each front end words (the command line in its own flags)."""

from __future__ import annotations

import re
import subprocess
import wave
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import write_clip

from animator import cli
from animator.media import clip as clip_module
from animator.renderer import sources
from animator.settings.errors import PYTHON_ADVICE, InputError


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("remedies")
    junk = folder / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 50)
    with wave.open(str(folder / "tone.wav"), "wb") as sound:  # sound only: no video stream
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes(np.zeros(800, np.int16).tobytes())
    frames = [np.full((16, 16, 3), 40 * i, np.uint8) for i in range(3)]
    return {"junk": junk, "tone": folder / "tone.wav",
            "clip": write_clip(folder / "three.mp4", frames, 10)}


def failing_reader():
    raise OSError("broken pipe\nframe 3: corrupt macroblock")
    yield  # a generator, as imageio_ffmpeg.read_frames is


def too_slow(*args, **kwargs):
    raise subprocess.TimeoutExpired("ffmpeg", clip_module.FFMPEG_TIMEOUT_S)


CASES = {  # what fails -> (the remedy, the error's message: facts only)
    "junk": ("re_encode", r"input video '.*junk\.mp4' is not a readable video \(.*Invalid data.*\)"),
    "tone": ("video_input", r"input video '.*tone\.wav' has no video stream \(only audio\)"),
    "start": ("earlier_start", r"input video '.*three\.mp4': start 5 s is past its end \(0\.3 s\)"),
    "decoder": ("re_encode", r"input video '.*three\.mp4' cannot be decoded past frame 3 "
                             r"\(frame 3: corrupt macroblock\)"),
    "timeout": ("trim", r"input video '.*three\.mp4': ffmpeg took over 600 s to read it"),
    "pixels": ("max_pixels", r"input video '.*three\.mp4' is 4000×3000 \(12,000,000 pixels\), over "
                             r"the limit of 1,000,000 pixels a frame"),
    "changed": ("force", r"input video '.*three\.mp4' ended at frame 3 of 9: it changed while it "
                         r"was being dreamed"),
}


def fail(case: str, files, monkeypatch) -> InputError:
    clip = clip_module.Clip(files["clip"], (16, 16), 10.0, 0.3, None)
    with pytest.raises(InputError) as caught:
        if case in ("junk", "tone"):
            clip_module.probe(files[case])
        elif case == "start":
            clip_module.count_frames(clip, start=5)
        elif case == "decoder":
            clip_module._next(failing_reader(), clip, 3)
        elif case == "timeout":
            monkeypatch.setattr(subprocess, "run", too_slow)
            clip_module.probe(files["clip"])
        elif case == "pixels":
            clip_module.check_pixels(clip_module.Clip(files["clip"], (4000, 3000), 10.0, 0.3, None),
                                      1_000_000)
        else:
            sources.VideoFrames._fit(SimpleNamespace(clip=clip, count=9), None, 3)
    return caught.value


@pytest.mark.parametrize("case", list(CASES))
def test_a_video_error_carries_its_fix_as_a_remedy(case, files, monkeypatch):
    remedy, message = CASES[case]
    error = fail(case, files, monkeypatch)
    assert error.remedy == remedy
    assert re.fullmatch(message, error.message), error.message
    assert str(error) == error.message + PYTHON_ADVICE[remedy]


def test_the_command_line_words_a_video_remedy_in_its_flags(files, monkeypatch):
    args = cli.build_parser().parse_args(["video", "clip.mp4", "-o", "out.mp4"])
    error = fail("changed", files, monkeypatch)
    assert str(error).endswith("it changed while it was being dreamed: pass force=True to start over")
    assert cli._one_line(error, cli._advice(args, error)).endswith(
        "it changed while it was being dreamed: pass --force to start over")
