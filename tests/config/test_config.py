"""The YAML config: validation with key paths, schedules, overrides, and the shipped examples."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from helpers import ROOT

from animator import config as config_module
from animator.renderer.loop import render
from animator.settings.errors import ConfigError

CONFIGS = ROOT / "configs"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "anim.yaml"
    path.write_text(text)
    return path


def test_the_documented_shape_loads(tmp_path):
    path = write(tmp_path, """
input: photo.jpg
size: [512, 512]
frames: 120
fps: 15
seed: 1
dream:
  model: vgg16-hed
  weights: bundled
  layers: {block4_conv3: 1.0, block5_conv1: 0.5}
  octaves: 3
  octave_scale: 1.4
  steps: 10
  step_size: "0:(2.0), 60:(3.0)"
  jitter: 32
transforms:
  - zoom: {factor: 1.04}
  - roll: {shift: "n / 15", axis: columns}
color: {coherence: match_first}
output: {path: out/zoom.mp4, reverse: false, pingpong: false, loop: 0, quality: 8}
""")
    config = config_module.load(path)
    assert config.input_path == tmp_path / "photo.jpg"
    assert config.output_path == tmp_path / "out" / "zoom.mp4"
    assert config.frames_dir == tmp_path / "out" / "zoom.mp4.frames"
    assert config.output_format == "mp4"
    assert config.chain.names == ["zoom", "roll"]
    assert config.dream_settings(0).step_size == 2.0
    assert config.dream_settings(30).step_size == pytest.approx(2.5)
    assert config.dream_settings(90).step_size == 3.0


def test_every_error_is_reported_with_its_key_path(tmp_path):
    path = write(tmp_path, """
input: photo.jpg
frames: 0
fps: -1
dream: {octave_scale: 0.8, step_size: -1, stepz: 3}
transforms: [{zoom: {factr: 1.1}}]
""")
    with pytest.raises(ConfigError) as caught:
        config_module.load(path)
    message = str(caught.value)
    for expected in ["frames: must be > 0 and <= 1,000,000, got 0",
                     "fps: must be >= 0.01 and <= 240, got -1",
                     "dream.octave_scale: must be > 1 and <= 10, got 0.8",
                     "dream.step_size: must be >= 0, got -1",
                     "dream.stepz: unknown key; did you mean: steps",
                     "transforms[0].zoom.factr: unknown parameter"]:
        assert expected in message
    assert "\n" not in message


def test_a_schedule_out_of_range_later_names_the_frame(tmp_path):
    path = write(tmp_path, "input: a.png\ndream: {octave_scale: '1.5 - t/20'}\n")
    with pytest.raises(ConfigError, match=r"dream.octave_scale: must be > 1 and <= 10, got 1 at frame 10"):
        config_module.load(path)


def test_each_scheduled_dream_value_is_parsed_once(tmp_path, monkeypatch):
    from animator.settings import schedule

    parsed = []

    def counted(value, path="value", names=("t",)):
        parsed.append(path.removeprefix("dream."))
        return parse(value, path, names)

    parse = schedule.parse
    monkeypatch.setattr(schedule, "parse", counted)
    path = write(tmp_path, "input: a.png\nframes: 40\n"
                           "dream: {octave_scale: '1.4 + 0.1*sin(t/8)', steps: {0: 4, 20: 8}, jitter: 16}\n")
    config = config_module.load(path)
    settings = [config.dream_settings(t) for t in config.sample_frames()]
    assert (settings[0].octave_scale, settings[0].steps, settings[0].jitter) == (1.4, 4, 16)
    assert settings[-1].steps == 8
    counts = Counter(name for name in parsed if name in config_module.SCHEDULED)
    assert {"octave_scale", "steps", "jitter", "octaves", "step_size"} <= set(counts)
    assert set(counts.values()) == {1}  # each value once, the defaults (octaves...) too


def test_a_bad_expression_is_refused(tmp_path):
    path = write(tmp_path, "input: a.png\ndream: {steps: \"__import__('os').getcwd()\"}\n")
    with pytest.raises(ConfigError, match="dream.steps"):
        config_module.load(path)


@pytest.mark.parametrize("text, message", [
    ("input: [unclosed\n", "is not valid YAML"),
    ("- a\n- b\n", "expected a mapping"),
    ("input: !!python/object/apply:os.system ['true']\n", "YAML tags that build objects"),
])
def test_files_that_are_not_configs(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        config_module.load(write(tmp_path, text))


def test_overrides_set_any_key(tmp_path):
    path = write(tmp_path, "input: a.png\nframes: 10\ndream: {steps: 10}\n")
    config = config_module.load(path, ["dream.steps=5", "output.reverse=true",
                                       "transforms=[{zoom: {factor: 1.1}}]"], frames=3)
    assert config.frames == 3
    assert config.dream_settings(0).steps == 5
    assert config.output.reverse is True
    assert config.chain.names == ["zoom"]
    with pytest.raises(ConfigError, match="expected KEY.PATH=VALUE"):
        config_module.load(path, ["dream.steps"])


def test_the_fingerprint_follows_the_pixels_not_the_output(tmp_path):
    path = write(tmp_path, "input: {noise: {size: [64, 64]}}\nframes: 10\n")
    base = config_module.load(path).fingerprint()
    assert config_module.load(path, ["frames=20", "fps=3", "output.reverse=true"]).fingerprint() == base
    same = ["output.checkpoint_every=7", "output.preset=slow"]  # how it is written, not what
    assert config_module.load(path, same).fingerprint() == base
    assert config_module.load(path, ["dream.steps=3"]).fingerprint() != base
    assert config_module.load(path, ["seed=9"]).fingerprint() != base


EXAMPLES = sorted(p for p in CONFIGS.glob("*.yaml") if p.stem != "sweep")  # sweep: test_sweep.py


def test_the_examples_are_all_there():
    names = {p.stem for p in EXAMPLES}
    assert {"quickstart", "zoom", "vertical_stretch", "rotate_zoom", "column_roll", "sine_shift",
            "stochastic_shift", "sobel", "prewitt", "blur", "reversed_zoom", "pingpong"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_config_renders(path, tmp_path):
    config = config_module.load(path)
    out = tmp_path / f"{path.stem}{config.output_path.suffix}"
    small = config_module.load(path, [f"output.path={out}", "size=[48, 48]", "dream.octaves=1",
                                      "dream.steps=1"], frames=2)
    result = render(small)
    assert result.frames == 2
    assert out.is_file() and out.stat().st_size > 0


def test_tile_size_defaults_to_auto_and_accepts_a_schedule(tmp_path):
    path = write(tmp_path, "input: a.png\n")
    assert config_module.load(path).dream_settings(0).tile_size is None
    assert config_module.load(path, ["dream.tile_size=256"]).dream_settings(3).tile_size == 256
    with pytest.raises(ConfigError, match="dream.tile_size: must be >= 32, got 16"):
        config_module.load(path, ["dream.tile_size=16"])
    with pytest.raises(ConfigError, match="dream.xla"):
        config_module.load(path, ["dream.xla=sometimes"])


def test_each_problem_keeps_its_key_path_for_a_form():
    data = {"input": "x.png", "frames": -1, "dream": {"steps": "sin("},
            "transforms": [{"zoom": {"bogus": 1}}, "nope"]}
    with pytest.raises(ConfigError) as caught:
        config_module.from_mapping(data)
    paths = [path for path, _ in caught.value.problems]
    assert paths == ["frames", "dream.steps", "transforms[0].zoom.bogus", "transforms[1]"]
    for path, line in caught.value.problems:
        assert line.startswith(f"{path}: ") and line in str(caught.value)


def test_parse_reads_yaml_text_and_names_its_source():
    assert config_module.parse("frames: 3\n") == {"frames": 3}
    with pytest.raises(ConfigError, match="config 'page' is not valid YAML"):
        config_module.parse("frames: [3\n", "page")


@pytest.mark.parametrize("value, cadence", [("5", (5, None)), ("2.5s", (None, 2.5)), ("'30s'", (None, 30.0))])
def test_the_checkpoint_cadence_is_frames_or_seconds(value, cadence, tmp_path):
    path = write(tmp_path, f"input: {{noise: {{size: [64, 64]}}}}\noutput: {{checkpoint_every: {value}}}\n")
    every = config_module.load(path).animation.output.checkpoint_every
    assert config_module.checkpoint_cadence(every) == cadence


@pytest.mark.parametrize("value", ["0", "-2", "0s", "ten", "5m", "true", "infs"])
def test_a_bad_checkpoint_cadence_or_preset_is_refused(value, tmp_path):
    path = write(tmp_path, f"input: {{noise: {{size: [64, 64]}}}}\noutput: {{checkpoint_every: {value}}}\n")
    with pytest.raises(ConfigError, match=r"output\.checkpoint_every: must be a number of frames "
                                          r"\(>= 1\) or of seconds \('30s'\), got"):
        config_module.load(path)
    with pytest.raises(ConfigError, match=r"output\.preset: .*'veryfast'.*got 'quick'"):
        config_module.load(path, ["output.checkpoint_every=3", "output.preset=quick"])


@pytest.mark.parametrize("value, says", [
    (True, "got True"),  # not read as 1 step
    ([1, 2], "got list [1, 2]"),  # one line, not one per type tried
])
def test_a_scheduled_value_of_the_wrong_kind_is_one_clear_problem(value, says):
    with pytest.raises(ConfigError) as error:
        config_module.from_mapping({"input": "a.png", "dream": {"steps": value}})
    assert list(error.value.problems) == [
        ("dream.steps", f"dream.steps: expected a number, keyframes or an expression, {says}")]
