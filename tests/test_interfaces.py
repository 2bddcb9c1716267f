"""The declared interfaces where implementations meet: every frame source and every sweep
executor has each method its Protocol names, and a video's frame source hands the loop the
config resolved for its clip, which is what lets `--dry-run` check every frame of a clip."""

from __future__ import annotations

import inspect
import typing

import numpy as np
import yaml
from helpers import write_clip

from animator.cli import main
from animator.renderer import sources
from animator.sweep import executors


def protocol_methods(protocol) -> set[str]:
    return {name for name, member in vars(protocol).items()
            if callable(member) and (not name.startswith("_") or name in ("__enter__", "__exit__"))}


def test_every_frame_source_has_the_interface_the_loop_reads():
    wanted = protocol_methods(sources.FrameSource)
    assert {"first", "begin", "settings", "next_start", "keep", "finish"} <= wanted
    assert "config" in typing.get_type_hints(sources.FrameSource)
    for source in (sources.Stills, sources.VideoFrames):
        missing = {name for name in wanted if not callable(getattr(source, name, None))}
        assert not missing, f"{source.__name__} lacks {sorted(missing)}"
        assert "self.config" in inspect.getsource(source.__init__), source.__name__


def test_every_sweep_executor_has_the_interface_drive_uses():
    wanted = protocol_methods(executors.Executor)
    assert wanted == {"submit", "wait", "outcome", "relay", "stop", "abort", "close"}
    for executor in (executors._SerialExecutor, executors._ProcessExecutor, executors._RayExecutor):
        missing = {name for name in wanted if not callable(getattr(executor, name, None))}
        assert not missing, f"{executor.__name__} lacks {sorted(missing)}"


def test_a_dry_run_checks_every_frame_of_a_clip_longer_than_the_default_frames(tmp_path, capsys):
    """The config names no `frames:` (the default is 60), the clip has 90: the frame source's
    config (90 frames) is what the dry run checks, so a step size that turns negative at frame
    76 is refused before anything is dreamed."""
    frames = [np.full((16, 16, 3), 10 * (i % 20), np.uint8) for i in range(90)]
    clip = write_clip(tmp_path / "long.mp4", frames, 30)
    config = tmp_path / "video.yaml"
    config.write_text(yaml.safe_dump({
        "input": {"video": str(clip)},
        "dream": {"octaves": 1, "steps": 1, "step_size": "7.55 - t/10"},
        "output": {"path": str(tmp_path / "out.mp4")}}))
    assert main(["render", str(config), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "dream.step_size" in err and "frame 76" in err, err
    assert not (tmp_path / "out.mp4").exists()
