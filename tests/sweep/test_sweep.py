"""Sweeps: variants with stable ids, the contact sheet's grid, index.html, re-runs, failures, stops,
and the same frames from a local Ray instance."""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import skimage_photo
from helpers import ROOT, write_clip
from PIL import Image

import transforms
from animator import sweep as sweep_module
from animator.cli import main
from animator.config import set_key
from animator.settings.errors import ConfigError
from animator.sweep.results import sheet_layout

BASE = {
    "input": {"noise": {"size": [32, 32], "seed": 3}},
    "size": [32, 32],
    "frames": 3,
    "fps": 10,
    "seed": 1,
    "dream": {"model": "vgg16-hed", "octaves": 1, "steps": 1, "jitter": 4, "layers": {"block3_conv3": 1.0}},
    "transforms": [{"zoom": {"factor": 1.05}}],
}
PHOTOS = [str(skimage_photo("chelsea")), str(skimage_photo("coffee"))]
GRID = {"input": PHOTOS, "transforms.0.zoom.factor": [1.02, 1.2]}


def write_sweep(folder: Path, name: str = "sweep.yaml", **spec) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "base.yaml").write_text(yaml.safe_dump(BASE))
    path = folder / name
    path.write_text(yaml.safe_dump({"base": "base.yaml", "contact_sheet": {"tile": 32}, **spec}))
    return path


def pngs(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("[0-9]*.png"))]


def assert_same_frames(folder: Path, other: Path, count: int = 3) -> None:
    ours, theirs = pngs(folder), pngs(other)
    assert len(ours) == len(theirs) == count
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    path = write_sweep(tmp_path_factory.mktemp("grid"), grid=GRID)
    plan = sweep_module.load(path)
    return plan, sweep_module.run(plan)


def test_a_two_by_two_grid_renders_four_variants_into_their_own_folders(grid):
    plan, report = grid
    assert [o.status for o in report.outcomes] == ["finished"] * 4
    assert [v.settings for v in plan.variants] == [
        {"input": photo, "transforms.0.zoom.factor": factor} for photo in PHOTOS for factor in (1.02, 1.2)]
    assert len({v.id for v in plan.variants}) == 4
    for variant in plan.variants:
        assert variant.folder == plan.folder / variant.id
        assert variant.config.output_path == variant.folder / f"{variant.id}.gif"
        with Image.open(variant.config.output_path) as gif:
            assert gif.n_frames == 3
    lasts = [pngs(v.config.frames_dir)[2].astype(float) for v in plan.variants]
    assert min(np.abs(a - b).mean() for i, a in enumerate(lasts) for b in lasts[i + 1:]) > 5


def test_the_contact_sheet_shows_each_variant_in_its_cell_frame_by_frame(grid):
    plan, report = grid
    layout = sheet_layout(plan)
    assert (layout.columns, layout.rows, layout.tile) == (2, 2, (32, 32))
    boxes = [layout.box(i) for i in range(4)]
    assert len({b[0] for b in boxes}) == 2 and len({b[1] for b in boxes}) == 2  # a 2x2 grid
    assert boxes[0][0] < boxes[1][0] and boxes[0][1] < boxes[2][1]  # row by row
    frames = [pngs(v.config.frames_dir) for v in plan.variants]
    with Image.open(report.sheet) as sheet:
        assert sheet.n_frames == 3
        assert sheet.size == layout.size
        for k in range(3):
            sheet.seek(k)
            pixels = np.asarray(sheet.convert("RGB"), np.float32)
            for cell, (left, top, width, height) in enumerate(boxes):
                tile = pixels[top:top + height, left:left + width]
                errors = [np.abs(tile - f[k]).mean() for f in frames]
                # the sheet's one 256-colour palette rounds four detailed photos: a few grey
                # levels; frame 0 is dreamed before the first zoom: the same for both factors
                assert errors[cell] == min(errors) and errors[cell] < 5, (k, cell, errors)
                if k:
                    assert sorted(errors)[1] > 10, (k, cell, errors)


def test_index_lists_every_variant_with_its_settings_output_and_yaml(grid):
    plan, report = grid
    page = report.index.read_text()
    for variant in plan.variants:
        assert f'<section id="{variant.id}">' in page
        assert f'src="{variant.id}/{variant.id}.gif"' in page
        assert f"animator render {variant.id}/variant.yaml" in page
    assert 'src="contact_sheet.gif"' in page
    assert "<code>transforms.0.zoom.factor</code> = <code>1.2</code>" in page


def test_a_variant_yaml_renders_that_variant_alone(grid, tmp_path):
    plan, _ = grid
    variant = plan.variants[3]
    data = yaml.safe_load(variant.yaml_path.read_text())
    assert data["input"] == PHOTOS[1] and data["transforms"][0]["zoom"]["factor"] == 1.2
    data["output"]["path"] = str(tmp_path / "alone.gif")
    (tmp_path / "alone.yaml").write_text(yaml.safe_dump(data))
    assert main(["render", str(tmp_path / "alone.yaml")]) == 0
    assert_same_frames(tmp_path / "alone.gif.frames", variant.config.frames_dir)


def test_running_a_finished_sweep_again_renders_nothing_new(grid):
    plan, _ = grid
    files = sorted(plan.folder.glob("*/*.frames/*.png")) + sorted(plan.folder.glob("*/*.gif"))
    files.append(plan.sheet_path)
    assert len(files) == 4 * 3 + 4 + 1
    before = [p.stat().st_mtime_ns for p in files]
    again = sweep_module.run(sweep_module.load(plan.source))
    assert [o.status for o in again.outcomes] == ["skipped"] * 4
    assert [p.stat().st_mtime_ns for p in files] == before


def test_a_failing_variant_is_reported_and_the_others_finish(tmp_path, capsys):
    path = write_sweep(tmp_path, grid={"dream.layers": ["block3_conv3", "<b>no_such</b>"]})
    code = main(["sweep", str(path)])
    err = capsys.readouterr().err
    plan = sweep_module.load(path)
    good, bad = plan.variants
    assert code == 2
    assert f"variant {bad.id} failed: " in err and "<b>no_such</b>" in err
    assert f"variant {good.id} finished" in err
    assert good.finished() and len(pngs(good.config.frames_dir)) == 3
    page = (plan.folder / "index.html").read_text()
    assert "&lt;b&gt;no_such&lt;/b&gt;" in page and "<b>no_such</b>" not in page
    assert 'class="failed">failed: ' in page


def test_quiet_shows_no_progress_only_the_failures(tmp_path, capsys):
    path = write_sweep(tmp_path, grid={"dream.layers": ["block3_conv3", "no_such"], "frames": [2]})
    code = main(["sweep", str(path), "--quiet"])
    out, err = capsys.readouterr()
    good, bad = sweep_module.load(path).variants
    assert code == 2 and good.finished() and out == ""
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith(f"variant {bad.id} failed: ") and "no_such" in lines[0]
    assert lines[1].endswith(f"1 of 2 variants failed: {bad.id}")


def test_a_stopped_sweep_resumes_to_the_same_frames(tmp_path):
    path = write_sweep(tmp_path, grid={"seed": [1, 2]})
    plan = sweep_module.load(path)
    stop = threading.Event()

    def on_frame(variant_id, done, total):
        if done == 2:
            stop.set()

    first = sweep_module.run(plan, on_frame=on_frame, stop=stop)
    assert [o.status for o in first.outcomes] == ["stopped", "stopped"]
    assert [v.frames_done() for v in plan.variants] == [2, 0]
    second = sweep_module.run(plan)
    assert [o.status for o in second.outcomes] == ["finished", "finished"]
    uninterrupted = sweep_module.load(path, folder=tmp_path / "whole")
    sweep_module.run(uninterrupted)
    for resumed, whole in zip(plan.variants, uninterrupted.variants):
        assert resumed.id == whole.id
        assert_same_frames(resumed.config.frames_dir, whole.config.frames_dir)


def test_random_draws_are_seeded_and_within_their_ranges(tmp_path):
    spec = {"random": {"n": 5, "seed": 7, "ranges": {
        "dream.step_size": [0.5, 2.0], "seed": [0, 9], "dream.layers": {"choices": ["a", "b"]}}}}
    path = write_sweep(tmp_path, **spec)
    drawn = [v.settings for v in sweep_module.load(path).variants]
    assert drawn == [v.settings for v in sweep_module.load(path).variants]
    assert len(drawn) == 5
    for settings in drawn:
        assert 0.5 <= settings["dream.step_size"] <= 2.0
        assert isinstance(settings["seed"], int) and 0 <= settings["seed"] <= 9
        assert settings["dream.layers"] in ("a", "b")
    combined = write_sweep(tmp_path, "both.yaml", grid={"fps": [5, 10]}, **spec)
    assert len(sweep_module.load(combined).variants) == 10


def test_ids_depend_on_the_settings_not_on_where_the_sweep_writes(tmp_path, capsys):
    path = write_sweep(tmp_path, grid=GRID)
    ids = [v.id for v in sweep_module.load(path).variants]
    assert main(["sweep", str(path), "--dry-run"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ids
    assert not (tmp_path / "out").exists()
    assert [v.id for v in sweep_module.load(path, folder=tmp_path / "elsewhere").variants] == ids
    changed = [v.id for v in sweep_module.load(path, ["dream.steps=2"]).variants]
    assert not set(changed) & set(ids)


@pytest.mark.parametrize("spec, message", [
    ({"gird": {"seed": [1]}}, "gird: unknown key; did you mean: grid?"),
    ({"grid": {"seed": []}}, "grid.seed: list should have at least 1 item"),
    ({"grid": {"dream.octave_scal": [1.2]}}, "dream.octave_scal: unknown key; did you mean: octave_scale"),
    ({"grid": {"dream.octave_scale": [0.8]}}, "dream.octave_scale: must be > 1 and <= 10, got 0.8"),
    ({"grid": {"transforms.3.zoom.factor": [1.1]}}, "transforms.3.zoom.factor: index 3 is out of range"),
    ({"random": {"n": 2, "ranges": {"seed": [5, 1]}}}, "random.ranges.seed: expected [low, high]"),
    ({}, "expected grid: or random: (or both)"),
    ({"base": "missing.yaml", "grid": {"seed": [1]}}, "base: config '"),
])
def test_a_bad_sweep_file_is_one_line_naming_the_key_path(tmp_path, capsys, spec, message):
    path = write_sweep(tmp_path, **spec)
    with pytest.raises(ConfigError, match=None) as error:
        sweep_module.load(path)
    assert message in str(error.value)
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def write_spec(folder: Path, base: dict, grid: dict) -> Path:
    """A sweep file with its `base:` inline: its files are relative to the sweep's folder."""
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base": base, "grid": grid, "contact_sheet": {"tile": 32}}))
    return path


def test_a_sweep_over_a_video_input_renders_each_variant(tmp_path):
    rng = np.random.default_rng(0)
    write_clip(tmp_path / "clip.mp4", [rng.integers(0, 256, (32, 32, 3), np.uint8) for _ in range(2)], 10)
    base = {key: value for key, value in BASE.items() if key not in ("input", "size", "frames")}
    plan = sweep_module.load(write_spec(tmp_path, {**base, "input": {"video": "clip.mp4"}},
                                        {"seed": [1, 2]}))
    report = sweep_module.run(plan)
    assert [o.status for o in report.outcomes] == ["finished", "finished"]
    for variant in plan.variants:
        assert variant.data["input"] == {"video": str(tmp_path / "clip.mp4")}
        assert len(pngs(variant.config.frames_dir)) == 2


PLUGIN = """
from transforms import register


@register("sweep_negative", numpy=True)
def sweep_negative(frame, ctx):
    return 255 - frame
"""


def test_a_transform_from_a_plugin_file_is_found_from_another_folder(tmp_path, monkeypatch):
    folder = tmp_path / "sweeps"
    folder.mkdir()
    (folder / "negative.py").write_text(textwrap.dedent(PLUGIN))
    base = {**BASE, "frames": 2, "transforms": ["negative.py:sweep_negative"]}
    monkeypatch.chdir(tmp_path)  # neither the sweep's folder nor a variant's
    with transforms.isolated():
        plan = sweep_module.load(write_spec(folder, base, {"seed": [1, 2]}))
        report = sweep_module.run(plan)
    assert [o.status for o in report.outcomes] == ["finished", "finished"]
    assert plan.variants[0].data["transforms"] == [f"{folder / 'negative.py'}:sweep_negative"]


def test_each_variant_writes_the_format_the_base_names(tmp_path):
    base = {**BASE, "output": {"format": "webp"}}
    plan = sweep_module.load(write_spec(tmp_path, base, {"seed": [1, 2]}))
    assert [v.config.output_path for v in plan.variants] == [
        v.folder / f"{v.id}.webp" for v in plan.variants]


def test_the_example_sweep_is_four_variants_of_the_quickstart():
    path = ROOT / "configs" / "sweep.yaml"
    plan = sweep_module.load(path)
    assert len(plan.variants) == 4
    assert plan.folder == path.parent / "out" / "sweep"
    assert {v.config.input_path for v in plan.variants} == {path.parent / "images" / "chelsea.jpg"}


def test_set_key_walks_into_lists_by_index():
    data = {"transforms": [{"zoom": {"factor": 1.0}}]}
    set_key(data, "transforms.0.zoom.factor", 1.5)
    set_key(data, "dream.steps", 3)
    assert data == {"transforms": [{"zoom": {"factor": 1.5}}], "dream": {"steps": 3}}
    with pytest.raises(ConfigError, match="'zoom' is not a list index"):
        set_key(data, "transforms.zoom.factor", 2)


def test_the_same_sweep_on_a_local_ray_instance_gives_the_same_frames(grid, tmp_path):
    ray = pytest.importorskip("ray")
    plan, _ = grid
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        on_ray = sweep_module.load(plan.source, folder=tmp_path / "ray")
        seen = []
        report = sweep_module.run(on_ray, ray_address="auto", on_frame=lambda *a: seen.append(a))
    finally:
        ray.shutdown()
    assert [o.status for o in report.outcomes] == ["finished"] * 4
    assert sorted(seen) == sorted((v.id, k, 3) for v in on_ray.variants for k in (1, 2, 3))
    for local, remote in zip(plan.variants, on_ray.variants):
        assert_same_frames(local.config.frames_dir, remote.config.frames_dir)


@pytest.mark.slow
def test_jobs_render_variants_in_processes_with_the_same_frames(grid, tmp_path):
    plan, _ = grid
    in_processes = sweep_module.load(plan.source, folder=tmp_path / "jobs")
    report = sweep_module.run(in_processes, jobs=2)
    assert [o.status for o in report.outcomes] == ["finished"] * 4
    for local, other in zip(plan.variants, in_processes.variants):
        assert_same_frames(local.config.frames_dir, other.config.frames_dir)
