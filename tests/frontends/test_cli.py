"""The commands' successful paths: dream, layers, transforms, assemble, and the progress bar."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from animator.cli import main
from animator.progress import ProgressBar


def test_dream_writes_a_dreamed_image(tmp_path, capsys):
    source = tmp_path / "in.png"
    pixels = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(source)
    out = tmp_path / "out" / "dreamed.png"
    code = main(["dream", str(source), "-o", str(out), "--octaves", "1", "--steps", "2",
                 "--model", "vgg16-hed", "--layers", "block3_conv3"])
    assert code == 0, capsys.readouterr().err
    dreamed = np.asarray(Image.open(out), np.float32)
    assert dreamed.shape == (64, 80, 3)
    assert np.abs(dreamed - pixels).mean() > 1.0
    assert f"wrote {out}" in capsys.readouterr().err


def test_layers_lists_feature_maps_and_marks_the_defaults(capsys):
    assert main(["layers", "vgg16-hed"]) == 0
    lines = capsys.readouterr().out.splitlines()
    by_name = {line.split()[0]: line for line in lines}
    assert "?x?x512  (default)" in by_name["block4_conv3"]
    assert by_name["block1_conv1"].split()[1] == "?x?x64"
    assert "(default)" not in by_name["block1_conv1"]


def test_transforms_lists_every_builtin_with_its_parameters(capsys):
    assert main(["transforms"]) == 0
    out = capsys.readouterr().out
    for name in ["zoom", "stretch", "rotate", "translate", "affine", "roll", "sine_shift",
                 "stochastic_shift", "sobel", "prewitt", "blur", "color_match", "hue_shift"]:
        assert f"\n{name}(" in f"\n{out}"
    assert "zoom(factor: float (>= 0.001 and <= 1000) = 1.05" in out


def test_assemble_makes_a_pingpong_gif_at_the_given_fps(tmp_path, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(4):
        Image.fromarray(np.full((16, 16, 3), 40 * i + 20, np.uint8)).save(frames / f"f{i}.png")
    out = tmp_path / "loop.gif"
    assert main(["assemble", str(frames), "-o", str(out), "--fps", "5", "--pingpong"]) == 0
    with Image.open(out) as gif:
        greys = []
        for i in range(gif.n_frames):
            gif.seek(i)
            greys.append(int(np.asarray(gif.convert("RGB"))[0, 0, 0]))
            assert gif.info["duration"] == 200
    assert greys == [20, 60, 100, 140, 100, 60]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_shows_count_rate_and_eta(monkeypatch):
    clock = iter([100.0, 104.0, 108.0])
    monkeypatch.setattr("animator.progress.time.monotonic", lambda: next(clock))
    stream = _Terminal()
    bar = ProgressBar("rendering zoom.yaml", stream=stream)
    bar.update(2, 10)
    line = stream.getvalue()
    assert "rendering zoom.yaml" in line and "2/10" in line
    assert "2.00 s/frame" in line and "ETA 00:16" in line


@pytest.mark.parametrize("columns", [80, 40])
def test_the_progress_bar_fits_the_terminal(columns):
    stream = _Terminal()
    bar = ProgressBar("rendering a_config_with_a_rather_long_name.yaml", stream=stream, width=columns)
    for done in range(1, 4):
        bar.update(done, 10)
    bar.close()
    visible = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stream.getvalue())
    lines = [line for line in re.split(r"[\r\n]", visible) if line.strip()]
    assert len(lines) >= 3 and "3/10" in lines[-1]
    assert max(len(line) for line in lines) <= columns


def test_the_progress_is_plain_lines_when_not_a_terminal(monkeypatch):
    clock = iter([100.0, 101.0, 103.0, 110.0])
    monkeypatch.setattr("animator.progress.time.monotonic", lambda: next(clock))
    stream = io.StringIO()
    bar = ProgressBar("rendering zoom.yaml", stream=stream)
    bar.update(1, 3)  # within 5 s of the start: not written
    bar.update(3, 3)  # the last one always is
    bar.close()
    assert stream.getvalue() == "rendering zoom.yaml: 3/3  1.00 s/frame  ETA 00:00\n"
