"""The Python API: animator.render / frames / load_config, over the same frame loop as the CLI."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from helpers import TINY_RENDER, with_changes
from PIL import Image

import animator
from animator.settings.errors import ConfigError, OutputError

TINY = with_changes(TINY_RENDER, frames=4)  # 64x64 noise, one octave of two steps, a zoom


def pngs(folder) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("[0-9]*.png"))]


def test_importing_animator_loads_no_backend():
    code = ("import sys, animator; animator.load_config; "
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert {"render", "frames", "load_config"} <= set(animator.__all__)


def test_overrides_by_key_path_section_and_output(tmp_path, monkeypatch):
    (tmp_path / "a.yaml").write_text("input: {noise: {size: [48, 48]}}\nframes: 9\n"
                                     "dream: {steps: 7, octaves: 2}\n")
    monkeypatch.chdir(tmp_path)
    config = animator.load_config(tmp_path / "a.yaml", frames=3, dream={"octaves": 1},
                                  output="here/x.mp4", **{"dream.jitter": 4})
    assert (config.frames, config.dream.steps, config.dream.octaves, config.dream.jitter) == (3, 7, 1, 4)
    assert config.output_path == tmp_path / "here" / "x.mp4"
    assert animator.load_config(config, dream__steps=2).dream.steps == 2
    assert animator.load_config(config) is config


def test_a_bad_override_names_its_key_path():
    with pytest.raises(ConfigError) as caught:
        animator.load_config(TINY, frmaes=3, dream__steps=-1)
    assert "dream.steps: must be >= 0 and <= 100,000, got -1" in str(caught.value)
    assert "frmaes: unknown key; did you mean: frames" in str(caught.value)


def test_a_key_path_indexes_lists_as_set_does():
    spec = with_changes(TINY, transforms=[{"zoom": {"factor": 1.05}}, {"rotate": {"degrees": 1.0}}])
    config = animator.load_config(spec, transforms__1__rotate__degrees=2.5,
                                  **{"transforms.0.zoom.factor": 1.1})
    assert config.transforms == [{"zoom": {"factor": 1.1}}, {"rotate": {"degrees": 2.5}}]
    assert animator.load_config(spec, transforms__0={"zoom": {"factor": 1.2}}).transforms[0] == {
        "zoom": {"factor": 1.2}}


@pytest.mark.parametrize("key, message", [
    ("transforms__2__zoom__factor", "transforms__2__zoom__factor: index 2 is out of range: "
                                    "the list has 1 item(s)"),
    ("transforms__zoom__factor", "transforms__zoom__factor: 'zoom' is not a list index (0, 1, ...)"),
    ("frames__count", "frames__count: 'frames' is not a section"),
])
def test_a_key_path_that_leads_nowhere_is_a_clear_error(key, message):
    with pytest.raises(ConfigError) as caught:
        animator.load_config(TINY, **{key: 1.1})
    assert str(caught.value) == message


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The tiny animation rendered by `animator.render`, with the progress it reported."""
    out = tmp_path_factory.mktemp("whole") / "w.gif"
    seen = []
    result = animator.render(TINY, output=out, progress=lambda *a: seen.append(a))
    return result, seen


def test_render_writes_the_gif_and_reports_each_frame(whole):
    result, seen = whole
    assert result.frames == 4 and result.output.suffix == ".gif"
    assert seen == [(1, 4, 0), (2, 4, 0), (3, 4, 0), (4, 4, 0)]
    with Image.open(result.output) as gif:
        assert gif.n_frames == 4


def test_frames_yields_the_rendered_frames_and_resumes(whole, tmp_path):
    result, _ = whole
    expected = pngs(result.frames_dir)
    out = tmp_path / "f.gif"
    first = []
    for frame in animator.frames(TINY, output=out):
        first.append(frame)
        if len(first) == 2:
            break
    assert len(pngs(tmp_path / "f.gif.frames")) == 2 and not out.exists()
    rest = list(animator.frames(TINY, output=out, resume=True))
    assert len(rest) == 2
    for got, want in zip(first + rest, expected, strict=True):
        assert got.dtype == np.uint8 and got.shape == (64, 64, 3)
        np.testing.assert_array_equal(got, want)
    assert out.exists()


def test_library_errors_speak_python(whole):
    result, _ = whole
    with pytest.raises(OutputError) as caught:
        next(animator.frames(TINY, output=result.output))
    message = str(caught.value)
    assert "pass resume=True to continue it or force=True to start over" in message
    assert "--" not in message
    changed = animator.load_config(TINY, output=result.output, dream__steps=3)
    with pytest.raises(ConfigError, match=r"dream\.steps\): undo the change, or pass force=True"):
        animator.render(changed, resume=True)
