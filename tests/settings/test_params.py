"""One declaration per parameter: ranges in transform signatures and the settings tables, checked
over every frame of the render when the config loads."""

from __future__ import annotations

import json
from typing import Annotated

import pytest
import yaml
from annotated_types import Gt
from helpers import ROOT

import transforms
from animator import cli
from animator import config as config_module
from animator.engine.dream import DreamSettings
from animator.settings import params
from animator.settings.errors import ConfigError, PluginError
from animator.settings.params import Range

FRAMES = 1000
LATE = 900


def ranged_transform_params() -> list[tuple[str, params.Parameter]]:
    return [(name, param) for name in transforms.available() if name in transforms.active()
            for param in transforms.get(name).params if param.range is not None]


def outside(bounds: Range):
    """A value just outside `bounds`, and how it reads in the message."""
    if bounds.gt is not None:
        return bounds.gt - 0.5
    if bounds.ge is not None:
        return bounds.ge - 1
    return (bounds.lt if bounds.lt is not None else bounds.le) + 1


def inside(param: params.Parameter):
    return param.default


CASES = ranged_transform_params()
IDS = [f"{name}.{param.name}" for name, param in CASES]


def test_every_built_in_with_a_limit_declares_it():
    declared = {f"{name}.{param.name}" for name, param in CASES}
    assert {"zoom.factor", "stretch.vertical", "stretch.horizontal", "blur.sigma", "sobel.strength",
            "prewitt.strength", "color_match.strength", "roll.group",
            "stochastic_shift.group"} <= declared


def config_with(name: str, key: str, value) -> dict:
    return {"input": {"noise": {"size": [32, 32]}}, "frames": FRAMES,
            "transforms": [{"translate": {"dx": 1}}, {name: {key: value}}]}


@pytest.mark.parametrize(("name", "param"), CASES, ids=IDS)
def test_a_constant_out_of_range_is_refused_at_load(name, param):
    bad = outside(param.range)
    with pytest.raises(ConfigError) as caught:
        config_module.from_mapping(config_with(name, param.name, bad))
    expected = f"transforms[1].{name}.{param.name}: must be {param.range}, got "
    assert expected in str(caught.value)
    assert "at frame" not in str(caught.value)


@pytest.mark.parametrize(("name", "param"), CASES, ids=IDS)
def test_a_schedule_leaving_its_range_late_is_refused_at_load_with_the_frame(name, param):
    bad = outside(param.range)
    value = {"keyframes": {0: inside(param), LATE: bad}, "interpolation": "step"}
    with pytest.raises(ConfigError) as caught:
        config_module.from_mapping(config_with(name, param.name, value))
    assert (f"transforms[1].{name}.{param.name}: must be {param.range}, got {bad:g} "
            f"at frame {LATE}") in str(caught.value)


def test_the_issue_example_message():
    """The first frame out of range, and its value, are those of the linear keyframes: between
    frame 100 (0.01) and 900 (-0.2) the factor falls 0.21/800 a frame, so frame 135 is the first
    below the range's 0.001."""
    spec = config_with("zoom", "factor", {0: 1.0, 100: 0.01, 900: -0.2})
    spec["frames"] = 901
    first = next(t for t in range(100, 901) if 0.01 - 0.21 * (t - 100) / 800 < 0.001)
    value = 0.01 - 0.21 * (first - 100) / 800
    assert first == 135
    with pytest.raises(ConfigError) as caught:
        config_module.from_mapping(spec)
    assert (f"transforms[1].zoom.factor: must be >= 0.001 and <= 1000, got {value:g} at frame 135"
            in str(caught.value))


def test_a_schedule_that_stays_in_range_over_the_render_is_accepted():
    value = {"keyframes": {0: 1.0, LATE: -0.2}, "interpolation": "step"}
    spec = config_with("zoom", "factor", value)
    spec["frames"] = LATE  # frames 0..899: the bad keyframe is never reached
    assert config_module.from_mapping(spec).chain.names == ["translate", "zoom"]


def test_an_int_parameter_is_checked_after_rounding():
    spec = config_with("roll", "group", "1.4 - t/1000")  # rounds to 1 until t = 900 (0.5 -> 0)
    with pytest.raises(ConfigError, match=r"roll\.group: must be >= 1, got 0 at frame 900"):
        config_module.from_mapping(spec)


def test_a_dream_setting_is_checked_over_all_frames_not_a_sample():
    spec = {"input": "a.png", "frames": 2000, "dream": {"steps": "10 - (t > 1500) * 20"}}
    with pytest.raises(ConfigError,
                       match=r"dream\.steps: must be >= 0 and <= 100,000, got -10 at frame 1501"):
        config_module.from_mapping(spec)


def test_an_output_option_out_of_range_is_refused_at_load():
    with pytest.raises(ConfigError, match=r"output\.loop: must be >= 0 and <= 65,535, got 70000"):
        config_module.from_mapping({"input": "a.png", "output": {"loop": 70000}})


@pytest.mark.parametrize(("name", "param"), CASES, ids=IDS)
def test_dry_run_catches_it(tmp_path, capsys, name, param):
    path = tmp_path / "anim.yaml"
    value = {"keyframes": {0: inside(param), LATE: outside(param.range)}, "interpolation": "step"}
    path.write_text(json.dumps(config_with(name, param.name, value)))
    assert cli.main(["render", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"transforms[1].{name}.{param.name}: must be {param.range}" in err
    assert f"at frame {LATE}" in err


def test_a_plugin_declares_ranges_with_range_or_annotated_types():
    with transforms.isolated(builtins=False):
        @transforms.register("glow")
        def glow(frame, ctx, radius: Annotated[float, Gt(0), "glow radius, pixels"] = 2.0,
                 amount: Annotated[float, Range(ge=0, le=1)] = 0.5):
            return frame

        radius, amount = transforms.get("glow").params
        assert (radius.annotation, radius.range, radius.help) == (float, Range(gt=0), "glow radius, pixels")
        assert str(amount) == "amount: float (>= 0 and <= 1) = 0.5"
        spec = {"input": "a.png", "frames": 10,
                "transforms": [{"glow": {"radius": "2 - t/3", "amount": 2}}]}
        with pytest.raises(ConfigError) as caught:
            config_module.from_mapping(spec)
    message = str(caught.value)
    assert "transforms[0].glow.radius: must be > 0, got 0 at frame 6" in message
    assert "transforms[0].glow.amount: must be >= 0 and <= 1, got 2" in message


def test_a_range_on_a_non_number_is_refused_at_registration():
    with transforms.isolated(builtins=False), pytest.raises(PluginError, match="needs an int or float"):
        @transforms.register("bad")
        def bad(frame, ctx, mode: Annotated[str, Range(gt=0)] = "a"):
            return frame


def test_parameters_lists_every_section_with_types_defaults_ranges_and_help():
    listing = {**params.parameters(), **transforms.parameters()}
    assert {"animation", "dream", "color", "output", "transforms.zoom", "transforms.roll"} <= set(listing)
    steps = next(p for p in listing["dream"] if p.name == "steps")
    assert steps.as_dict() == {"name": "steps", "type": "int", "default": 10, "required": False,
                               "choices": None, "range": ">= 0 and <= 100,000", "ge": 0, "le": 100_000,
                               "scheduled": True,
                               "help": "gradient-ascent steps per octave"}
    factor = listing["transforms.zoom"][0].as_dict()
    assert (factor["name"], factor["default"], factor["ge"], factor["le"], factor["scheduled"]) == \
        ("factor", 1.05, 0.001, 1000, True)
    assert factor["help"]
    palette = next(p for p in listing["output"] if p.name == "palette")
    assert palette.as_dict()["choices"] == ["shared", "per_frame"]
    json.dumps({key: [p.as_dict() for p in value] for key, value in listing.items()})


def test_the_engine_and_the_config_take_their_defaults_from_the_declarations():
    settings, dream = DreamSettings(), config_module.Dream()
    for name in ("octaves", "octave_scale", "steps", "step_size", "jitter", "normalisation", "max_loss"):
        assert getattr(settings, name) == getattr(dream, name) == params.default("dream", name)
    animation = config_module.Animation(input="a.png")
    for name, param in params.ANIMATION.items():
        assert getattr(animation, name) == param.default
    for name, param in params.OUTPUT.items():
        assert getattr(animation.output, name) == param.default
    with pytest.raises(ConfigError, match="dream.octave_scale: must be > 1 and <= 10, got 1"):
        DreamSettings(octave_scale=1)


def test_the_readme_config_documents_every_declared_setting():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## The config file", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    documented = yaml.safe_load(block)
    assert set(params.ANIMATION) <= set(documented)
    for section in ("dream", "color", "output"):
        assert set(params.SECTIONS[section]) <= set(documented[section]), section


def test_the_video_section_is_declared_and_checked_from_the_declaration():
    blend = next(p for p in params.parameters()["video"] if p.name == "blend")
    assert (blend.default, str(blend.range)) == (0.8, ">= 0 and <= 1")
    assert config_module.Video().every == params.default("video", "every")
    with pytest.raises(ConfigError, match=r"video\.blend: must be >= 0 and <= 1, got 2"):
        config_module.from_mapping({"input": {"video": "clip.mp4"}, "video": {"blend": 2}})
