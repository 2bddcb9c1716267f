"""scripts/quality.py: drift, sharpness, clipping and unexplained change of a frames folder."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT
from PIL import Image

SCRIPT = ROOT / "scripts" / "quality.py"


def load_script():
    spec = importlib.util.spec_from_file_location("quality", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["quality"] = module  # its dataclass looks its module up while being defined
    spec.loader.exec_module(module)
    return module


def save(frames_dir: Path, frames) -> None:
    frames_dir.mkdir()
    for index, frame in enumerate(frames):
        Image.fromarray(frame.astype(np.uint8)).save(frames_dir / f"{index:05d}.png")


def test_quality_figures_of_a_rolling_brightening_flattening_sequence(tmp_path):
    quality = load_script()
    base = np.random.default_rng(0).uniform(40, 200, (24, 32, 3)).round()
    frames = [base, np.roll(base, 2, axis=1), base + 10.0, np.full_like(base, 120.0), base * 0 + 255]
    save(tmp_path / "frames", frames)
    rows = list(quality.measure(tmp_path / "frames", "[{translate: {dx: 2, fill: wrap}}]"))
    assert [r.index for r in rows] == [0, 1, 2, 3, 4]
    assert rows[1].drift == 0 and rows[1].unexplained == 0  # the motion explains a pure shift
    assert rows[1].sharpness == pytest.approx(rows[0].sharpness, rel=0.01)  # borders differ
    assert abs(rows[2].drift - 10 / 255 * 100) < 1e-9  # every channel's mean up by 10
    assert rows[3].sharpness == 0 and rows[3].clipped == 0
    assert rows[4].clipped == 1.0 and rows[0].clipped == 0
    lines = quality.summary(rows, tail=2)
    assert lines[0] == "frames: 5" and "0% of frame 0" in lines[1]


def test_quality_cli_reads_a_folder_and_refuses_a_missing_one(tmp_path):
    save(tmp_path / "frames", [np.zeros((8, 8, 3)), np.zeros((8, 8, 3))])
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "frames"), "--transforms", "[]",
                           "--csv", str(tmp_path / "q.csv")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("frames: 2\n")
    assert (tmp_path / "q.csv").read_text().splitlines()[0] == "index,drift,sharpness,clipped,unexplained"
    missing = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "nowhere")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "is not a folder" in missing.stderr


def zoom_sequence(count: int) -> tuple[list[np.ndarray], object]:
    """A photo zoomed 5% a frame with nothing dreamed, and the motion that made it."""
    from skimage import data

    quality = load_script()
    photo = np.asarray(Image.fromarray(data.chelsea()).resize((64, 48)), np.float64)
    move = quality.motion(Path("."), "[{zoom: {factor: 1.05}}]")
    frames = [photo]
    for index in range(count - 1):
        frames.append(move(frames[-1], index))
    return frames, move


def test_novelty_of_a_pure_zoom_settles_at_once():
    quality = load_script()
    frames, move = zoom_sequence(12)
    rows = list(quality.novelty(frames, move, lag=4))
    assert [r.index for r in rows] == list(range(4, 12))
    assert all(r.warped < 1e-6 for r in rows)  # the zoom explains every frame
    assert quality.settle_frame(rows) == 4  # the first frame with one 4 frames before it


def test_novelty_of_fresh_noise_every_frame_never_settles():
    quality = load_script()
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(12):  # each frame a new texture: its own grain and colour balance
        grain = int(rng.integers(1, 9))
        small = rng.uniform(0, 255, (48 // grain + 1, 64 // grain + 1, 3)) * rng.uniform(0.3, 1, 3)
        frames.append(np.kron(small, np.ones((grain, grain, 1)))[:48, :64])
    rows = list(quality.novelty(frames, None, lag=4))
    assert len(rows) == 8 and quality.settle_frame(rows) is None
    assert all(r.warped > 0.3 and r.gram > r.floor for r in rows)
    lines = quality.novelty_summary(rows, lag=4)
    assert lines[0].startswith("novelty (lag 4): ") and lines[1] == "settles: never (0 of 8 frames repeat)"
