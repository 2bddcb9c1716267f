"""Animations end to end: frame counts and order, GIF/MP4 read back, resume, colour coherence."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY_RENDER as TINY
from helpers import tiny_config
from PIL import Image

from animator.renderer.loop import render
from animator.settings.errors import ConfigError, OutputError


def png_frames(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("[0-9]*.png"))]


def gif_frames(path: Path) -> tuple[list[np.ndarray], list[int], dict]:
    frames, durations = [], []
    with Image.open(path) as gif:
        info = dict(gif.info)
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB"), np.float32))
            durations.append(gif.info["duration"])
    return frames, durations, info


def closest(frame: np.ndarray, candidates: list[np.ndarray]) -> int:
    return int(np.argmin([np.abs(frame - c.astype(np.float32)).mean() for c in candidates]))


@pytest.fixture(scope="module")
def forward(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("forward")
    config = tiny_config(tmp)
    result = render(config)
    return config, result


def test_six_frames_make_a_six_frame_gif_that_loops(forward):
    config, result = forward
    assert result.frames == 6
    assert sorted(p.name for p in config.frames_dir.glob("*.png")) == [
        f"{i:05d}.png" for i in range(6)]
    frames, durations, info = gif_frames(config.output_path)
    assert len(frames) == 6
    assert info["loop"] == 0
    assert durations == [100] * 6
    pngs = png_frames(config.frames_dir)
    assert [closest(f, pngs) for f in frames] == list(range(6))


def test_frames_move_and_dream(forward):
    config, _ = forward
    pngs = [f.astype(np.float32) for f in png_frames(config.frames_dir)]
    for a, b in zip(pngs, pngs[1:]):
        assert np.abs(a - b).mean() > 1.0


def test_reverse_plays_the_frames_backwards(forward, tmp_path):
    config, _ = forward
    from animator.media.video import assemble

    out = tmp_path / "reversed.gif"
    assert assemble(config.frames_dir, out, fps=10, reverse=True) == 6
    pngs = png_frames(config.frames_dir)
    assert [closest(f, pngs) for f in gif_frames(out)[0]] == [5, 4, 3, 2, 1, 0]


def test_a_reversed_render(tmp_path):
    config = tiny_config(tmp_path, frames=4, output__reverse=True)
    render(config)
    pngs = png_frames(config.frames_dir)
    assert [closest(f, pngs) for f in gif_frames(config.output_path)[0]] == [3, 2, 1, 0]


def test_pingpong_gives_2n_minus_2_frames(forward, tmp_path):
    config, _ = forward
    from animator.media.video import assemble

    out = tmp_path / "pingpong.gif"
    assert assemble(config.frames_dir, out, fps=10, pingpong=True) == 10
    pngs = png_frames(config.frames_dir)
    order = [closest(f, pngs) for f in gif_frames(out)[0]]
    assert order == [0, 1, 2, 3, 4, 5, 4, 3, 2, 1]


def test_mp4_reads_back_at_size_and_count(tmp_path):
    import imageio.v3 as iio

    config = tiny_config(tmp_path, "clip.mp4", frames=4,
                         input={"noise": {"size": [66, 50], "seed": 2}})
    render(config)
    video = iio.imread(config.output_path, plugin="pyav") if _has_pyav() else \
        np.stack(list(iio.imiter(config.output_path)))
    assert video.shape == (4, 50, 66, 3)


def mp4_frames(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    return np.stack(list(iio.imiter(path))).astype(np.float32)


@pytest.fixture(scope="module")
def live_mp4(tmp_path_factory):
    """A 4-frame MP4 render; `assemble` fails the test if the render calls it."""
    import animator.renderer.loop

    tmp = tmp_path_factory.mktemp("live")
    config = tiny_config(tmp, "live.mp4", frames=4)
    saved = animator.renderer.loop.assemble

    def no_assembly(config):
        raise AssertionError("a forward MP4 render must not need an assembly pass")

    animator.renderer.loop.assemble = no_assembly
    try:
        result = render(config)
    finally:
        animator.renderer.loop.assemble = saved
    return config, result


def test_a_forward_mp4_is_encoded_while_the_frames_are_dreamed(live_mp4):
    config, result = live_mp4
    assert result.output == config.output_path and result.frames == 4
    pngs = png_frames(config.frames_dir)
    assert [closest(f, pngs) for f in mp4_frames(config.output_path)] == [0, 1, 2, 3]
    assert not list(config.output_path.parent.glob(".live.mp4.*"))  # no temporary left behind


def test_the_live_mp4_is_the_one_assemble_makes_from_the_frames(live_mp4, tmp_path):
    from animator.media.video import assemble

    config, _ = live_mp4
    again = tmp_path / "again.mp4"
    assemble(config.frames_dir, again, fps=config.animation.fps, quality=config.animation.output.quality,
             comment=config.effective_yaml())
    assert again.read_bytes() == config.output_path.read_bytes()


def test_a_failing_encoder_falls_back_to_assembling_the_frames(tmp_path, monkeypatch):
    from animator.media import video

    original, failures = video.Mp4Writer.write, []

    def fails_while_rendering(self, frame):
        if threading.current_thread().name.startswith("encoder") and self.frames_written == 2:
            failures.append(self.path)
            raise OutputError("ffmpeg failed (broken pipe)")
        original(self, frame)

    monkeypatch.setattr(video.Mp4Writer, "write", fails_while_rendering)
    config = tiny_config(tmp_path, "fallback.mp4", frames=4)
    assert render(config).frames == 4
    assert failures == [config.output_path]
    pngs = png_frames(config.frames_dir)
    assert [closest(f, pngs) for f in mp4_frames(config.output_path)] == [0, 1, 2, 3]
    assert not list(tmp_path.glob(".fallback.mp4.*"))


def test_a_stopped_mp4_render_is_playable_and_resumes_to_the_whole(live_mp4, tmp_path):
    whole, _ = live_mp4
    config = tiny_config(tmp_path, "live.mp4", frames=4)
    _render_stopping_after(config, 2)
    assert len(mp4_frames(config.output_path)) == 2  # the live file, closed where it stopped
    assert render(config, resume=True).frames == 4  # assembled: the live file began at frame 0
    for a, b in zip(png_frames(whole.frames_dir), png_frames(config.frames_dir), strict=True):
        np.testing.assert_array_equal(a, b)
    assert mp4_frames(config.output_path).shape == (4, 64, 64, 3)


def test_a_reversed_mp4_is_assembled_backwards(tmp_path):
    config = tiny_config(tmp_path, "back.mp4", frames=3, output__reverse=True)
    render(config)
    pngs = png_frames(config.frames_dir)
    assert [closest(f, pngs) for f in mp4_frames(config.output_path)] == [2, 1, 0]


def _has_pyav() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def _render_stopping_after(config, frames: int) -> None:
    stop = threading.Event()

    def progress(done, total, start):
        if done >= frames:
            stop.set()

    from animator.settings.errors import Interrupted

    with pytest.raises(Interrupted, match=f"stopped after {frames} of"):
        render(config, progress=progress, stop=stop)


def test_a_render_stopped_after_frame_3_resumes_identically(forward, tmp_path):
    whole, _ = forward
    config = tiny_config(tmp_path)
    _render_stopping_after(config, 3)
    assert len(png_frames(config.frames_dir)) == 3
    assert len(gif_frames(config.output_path)[0]) == 3  # a playable partial output
    result = render(config, resume=True)
    assert result.started_at == 3 and result.frames == 6
    for a, b in zip(png_frames(whole.frames_dir), png_frames(config.frames_dir), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_changed_config_refuses_to_resume(tmp_path):
    config = tiny_config(tmp_path)
    _render_stopping_after(config, 2)
    changed = tiny_config(tmp_path, dream={**TINY["dream"], "steps": 3})
    with pytest.raises(ConfigError, match=r"config changed.*dream\.steps.*force=True"):
        render(changed, resume=True)
    assert len(png_frames(config.frames_dir)) == 2


def test_more_frames_continue_a_finished_render(forward, tmp_path):
    config = tiny_config(tmp_path, frames=4)
    render(config)
    longer = tiny_config(tmp_path, frames=6)
    assert render(longer, resume=True).started_at == 4
    for a, b in zip(png_frames(forward[0].frames_dir), png_frames(longer.frames_dir), strict=True):
        np.testing.assert_array_equal(a, b)


def test_an_existing_output_is_refused_without_force(forward):
    config, _ = forward
    with pytest.raises(OutputError, match="exists: pass resume=True.*force=True"):
        render(config)


def test_frames_only_output(tmp_path):
    config = tiny_config(tmp_path, "frames_only", frames=2, output__format="frames")
    result = render(config)
    assert result.output is None
    assert len(png_frames(config.frames_dir)) == 2


def _colour_drift(tmp_path, coherence: str) -> tuple[float, float]:
    config = tiny_config(
        tmp_path / coherence, frames=60,
        input={"noise": {"size": [48, 48], "seed": 1}},
        dream={"model": "vgg16-hed", "octaves": 1, "steps": 1, "step_size": 6, "jitter": 4,
               "layers": {"block2_conv2": 1.0}},
        transforms=[{"zoom": {"factor": 1.08}}],
        color={"coherence": coherence})
    render(config)
    frames = [f.astype(np.float32) for f in png_frames(config.frames_dir)]
    mean0, std0 = frames[0].mean(), frames[0].std()
    mean_drift = max(abs(f.mean() - mean0) / mean0 for f in frames)
    std_drift = max(abs(f.std() - std0) / std0 for f in frames)
    return mean_drift, std_drift


def test_colour_coherence_holds_the_first_frames_statistics(tmp_path):
    kept = _colour_drift(tmp_path, "match_first")
    free = _colour_drift(tmp_path, "none")
    assert kept[0] < 0.10 and kept[1] < 0.10
    assert max(free) > max(kept)
    assert max(free) > 0.10


def test_a_render_on_the_jax_backend(tmp_path):
    import os
    import subprocess
    import sys

    import yaml

    data = {**TINY, "frames": 3, "output": {"path": "jax.gif"}}
    data["transforms"] = [{"zoom": {"factor": 1.05}}, {"roll": {"shift": "n / 15"}}, "blur"]
    path = tmp_path / "jax.yaml"
    path.write_text(yaml.safe_dump(data))
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-m", "animator", "render", str(path)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    frames, durations, info = gif_frames(tmp_path / "jax.gif")
    assert len(frames) == 3 and durations == [100] * 3 and info["loop"] == 0
    assert np.abs(frames[0] - frames[2]).mean() > 1.0


def test_dash_o_is_relative_to_the_current_folder(tmp_path, monkeypatch, capsys):
    import yaml

    from animator.cli import main

    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "tiny.yaml").write_text(yaml.safe_dump({**TINY, "frames": 2}))
    monkeypatch.chdir(tmp_path)
    assert main(["render", "configs/tiny.yaml", "-o", "here/short.gif"]) == 0
    assert (tmp_path / "here" / "short.gif").is_file()
    assert not (folder / "here").exists()


# --- the background writes ------------------------------------------------------------------


class _Store:
    """A FrameStore whose frame writes can fail or wait; records what was saved."""

    def __init__(self, folder: Path, fail_at: int | None = None, barrier=None):
        from animator.renderer.state import FrameStore

        self.real = FrameStore(folder)
        self.real.create()
        self.folder, self.fail_at, self.barrier = folder, fail_at, barrier
        self.saved: list[int] = []

    def write_frame(self, index, pixels):
        if self.barrier is not None:
            self.barrier.wait()  # passes only when `parties` writes run at the same time
        if index == self.fail_at:
            raise OutputError(f"disk full while writing frame {index}")
        self.real.write_frame(index, pixels)

    def save_state(self, index, frame, rng_state):
        self.saved.append(index)
        self.real.save_state(index, frame, rng_state)


def _write_frames(writes, count: int, every: int = 1) -> None:
    pixels = np.full((8, 8, 3), 100, np.uint8)
    for index in range(count):
        writes.frame(index, writes.fetch(pixels))
        if (index + 1) % every == 0:
            writes.state(index + 1, pixels.astype(np.float32), {"n": index})
    writes.drain()


def test_frame_pngs_are_written_in_parallel(tmp_path):
    from animator.renderer.writes import _Writes

    store = _Store(tmp_path, barrier=threading.Barrier(2, timeout=20))
    writes = _Writes(store, threads=2)
    try:
        _write_frames(writes, 4)  # a barrier of 2 breaks unless two PNGs are written at once
    finally:
        writes.close()
    assert store.saved == [1, 2, 3, 4]
    assert store.real.frame_count() == 4


def test_no_resume_point_is_saved_past_a_failed_frame(tmp_path):
    from animator.renderer.writes import _Writes

    store = _Store(tmp_path, fail_at=1)
    writes = _Writes(store, threads=3)
    with pytest.raises(OutputError, match="frame 1"):
        try:
            _write_frames(writes, 5)
        finally:
            writes.close()
    assert store.saved == [1]  # the point after frame 0; none after the missing frame 1
    assert store.real.latest_state().index == 1


def test_a_sparse_resume_point_waits_for_every_frame_since_the_last(tmp_path):
    from animator.renderer.writes import _Writes

    store = _Store(tmp_path, fail_at=4)
    writes = _Writes(store, threads=3)
    with pytest.raises(OutputError, match="frame 4"):
        try:
            _write_frames(writes, 9, every=3)  # points at 3, 6 (after the failed frame 4), 9
        finally:
            writes.close()
    assert store.saved == [3]
    assert store.real.latest_state().index == 3
