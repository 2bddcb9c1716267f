"""A long render stopped, or killed, again and again ends exactly as an uninterrupted one (run with
-m slow)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from animator import config as config_module
from animator.renderer.loop import render
from animator.settings.errors import Interrupted

FRAMES, EVERY = 200, 50
SOAK = {
    "input": {"noise": {"size": [64, 64], "seed": 5}},
    "frames": FRAMES,
    "fps": 25,
    "seed": 2,
    "dream": {"model": "vgg16-hed", "octaves": 1, "steps": 2, "jitter": 8, "layers": {"block3_conv3": 1.0}},
    "transforms": [{"zoom": {"factor": 1.02}}, {"rotate": {"degrees": "0.5*sin(t/20)"}}],
}


def soak_config(folder: Path, name: str):
    # resume points every 7 frames: a resume dreams again the frames since the last one
    data = {**SOAK, "output": {"path": f"{name}/soak.gif", "checkpoint_every": 7}}
    return config_module.from_mapping(data, folder, source=str(folder / f"{name}.yaml"))


def render_in_pieces(config) -> int:
    """Render, stopping after every EVERY frames and resuming; returns the interruptions."""
    interruptions, stopped_at = 0, set()
    for attempt in range(FRAMES // EVERY + 1):
        stop = threading.Event()

        def progress(done, total, started_at, stop=stop):
            # once at each multiple: frames redone after a resume pass it again
            if done % EVERY == 0 and done < total and done not in stopped_at:
                stopped_at.add(done)
                stop.set()

        try:
            render(config, resume=attempt > 0, progress=progress, stop=stop)
            return interruptions
        except Interrupted:
            interruptions += 1
            if interruptions == 2:  # and once, a crash that tore the newest frame's file
                newest = config.frames_dir / f"{2 * EVERY - 1:05d}.png"
                newest.write_bytes(newest.read_bytes()[:100])
    raise AssertionError("the render never finished")


@pytest.mark.slow
def test_a_render_stopped_every_50_frames_ends_as_if_uninterrupted(tmp_path):
    whole, pieces = soak_config(tmp_path, "whole"), soak_config(tmp_path, "pieces")
    render(whole)
    assert render_in_pieces(pieces) == FRAMES // EVERY - 1
    names = [f"{i:05d}.png" for i in range(FRAMES)]
    assert sorted(p.name for p in pieces.frames_dir.glob("[0-9]*.png")) == names
    for name in names:
        assert (pieces.frames_dir / name).read_bytes() == (whole.frames_dir / name).read_bytes(), name
    assert pieces.output_path.read_bytes() == whole.output_path.read_bytes()


KILLED_FRAMES = 40
KILLS = 6


def newest_frame(folder: Path) -> int:
    """The number of the newest frame PNG in `folder`, -1 if none."""
    return max((int(p.stem) for p in folder.glob("[0-9]*.png")), default=-1)


def render_killed_again_and_again(config_path: Path, frames_dir: Path, seed: int) -> int:
    """Run `animator render` (then `--resume`) in a subprocess, each run killed with SIGKILL at a
    random moment once it has written a frame (the first, right after frame 0); returns the kills."""
    import random
    import subprocess
    import sys
    import time

    chance, kills = random.Random(seed), 0
    for attempt in range(KILLS + 10):
        resume = ["--resume"] if attempt else []
        process = subprocess.Popen([sys.executable, "-m", "animator", "render", str(config_path), *resume],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        before = newest_frame(frames_dir)
        delay = 0.0 if kills == 0 else chance.uniform(0.0, 1.5)
        while kills < KILLS and process.poll() is None and newest_frame(frames_dir) <= before:
            time.sleep(0.005)
        if kills < KILLS and process.poll() is None:
            time.sleep(delay)
            process.kill()
            process.wait()
            kills += 1
            continue
        assert process.wait() == 0, process.stderr.read()
        return kills
    raise AssertionError("the render never finished")


@pytest.mark.slow
def test_a_render_killed_at_random_moments_from_frame_0_on_ends_as_if_uninterrupted(tmp_path):
    import yaml

    data = {**SOAK, "frames": KILLED_FRAMES, "output": {"path": "out/soak.gif", "checkpoint_every": 3}}
    paths = {}
    for name in ("whole", "killed"):
        (tmp_path / name).mkdir()
        paths[name] = tmp_path / name / "soak.yaml"
        paths[name].write_text(yaml.safe_dump(data))
    render(config_module.load(paths["whole"]))
    frames = tmp_path / "killed/out/soak.gif.frames"
    assert render_killed_again_and_again(paths["killed"], frames, seed=7) == KILLS
    whole = tmp_path / "whole/out/soak.gif.frames"
    names = [f"{i:05d}.png" for i in range(KILLED_FRAMES)]
    assert sorted(p.name for p in frames.glob("[0-9]*.png")) == names
    for name in names:
        assert (frames / name).read_bytes() == (whole / name).read_bytes(), name
    assert (tmp_path / "killed/out/soak.gif").read_bytes() == (tmp_path / "whole/out/soak.gif").read_bytes()
