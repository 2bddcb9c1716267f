"""A transform's parameter values are checked at every frame they are used, not only when the
config loads: a schedule may leave its range on a frame the load-time check did not visit (a
render over 2000 frames is checked on a sample), and a chain built or a transform called from
Python is checked too."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from test_robustness import error_line, run

import animator
import transforms
from animator.renderer.state import FrameStore
from animator.settings.errors import ConfigError, PluginError
from animator.settings.schedule import sample_frames
from transforms import Context, build_chain

# 2001 frames: over the 2000 that are all checked when the config loads. The period is 0 at
# frame 1000 only, which the load-time sample leaves out.
FRAMES, ZERO_AT = 2001, 1000
REACHES_ZERO = {
    "input": {"noise": {"size": [32, 32], "seed": 3}},
    "frames": FRAMES,
    "dream": {"model": "vgg16-hed", "octaves": 1, "steps": 0, "layers": {"block3_conv3": 1.0}},
    "transforms": [{"sine_shift": {"period": f"t - {ZERO_AT}", "amplitude": 1}}],
    "output": {"path": "out/r.gif"},
}
SAYS = (f"transform 'sine_shift' (built-in) at frame {ZERO_AT}: period: must not be 0 (got 0; "
        "it counts lines per wave, negative runs the wave backwards)")


def write(folder, data) -> str:
    path = folder / "r.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def context(index: int, size=(8, 6)) -> Context:
    return Context(index, 100, size, np.random.default_rng(0))


def test_the_frame_is_one_the_load_time_check_leaves_out():
    chain = build_chain(REACHES_ZERO["transforms"], frames=FRAMES)  # loads: no sampled frame is 0
    assert ZERO_AT not in sample_frames(FRAMES, chain.steps[0].schedules())


def test_a_period_reaching_zero_stops_the_render_at_that_frame_keeping_frames_and_resume_state(
        tmp_path):
    config = write(tmp_path, REACHES_ZERO)
    with pytest.raises(PluginError) as raised:
        animator.render(config)
    assert str(raised.value) == (f"{SAYS}: frames 0..{ZERO_AT} are kept: make the video of them with "
                                 f"frames={ZERO_AT} and resume=True, or change the value and pass "
                                 "force=True to start over")
    store = FrameStore(tmp_path / "out/r.gif.frames")
    assert store.frame_count() == ZERO_AT + 1
    assert store.latest_state().index == ZERO_AT  # resumes by dreaming frame 1000 again
    # the resume state is good: cut short before the bad frame, the render ends with every frame
    with pytest.warns(UserWarning, match=f"holds {ZERO_AT + 1} frames"):
        result = animator.render(config, resume=True, frames=raised.value.facts["frames"])
    assert result.frames == ZERO_AT + 1 and (tmp_path / "out/r.gif").is_file()


def test_a_schedule_not_finite_on_an_unchecked_frame_keeps_the_frames_alike(tmp_path):
    data = {**REACHES_ZERO, "transforms": [{"sine_shift": {"amplitude": f"1 / (t - {ZERO_AT}) ** 2"}}]}
    with pytest.raises(PluginError) as raised:
        animator.render(write(tmp_path, data))
    assert str(raised.value) == (
        f"transforms[0].sine_shift.amplitude: '1 / (t - {ZERO_AT}) ** 2' is not finite at t={ZERO_AT}: "
        f"frames 0..{ZERO_AT} are kept: make the video of them with frames={ZERO_AT} and "
        "resume=True, or change the value and pass force=True to start over")
    assert FrameStore(tmp_path / "out/r.gif.frames").frame_count() == ZERO_AT + 1


def test_the_command_line_says_it_in_one_line_with_exit_status_2(tmp_path, capsys):
    code, err = run(capsys, "render", write(tmp_path, REACHES_ZERO))
    line = error_line(err)
    assert code == 2
    assert SAYS in line and f"frames 0..{ZERO_AT} are kept" in line
    # a changed config cannot resume: the advice keeps the frames with the same config, shorter
    assert line.endswith(f"--resume --set frames={ZERO_AT}, or change the value and pass --force to "
                         "start over")


def test_a_direct_call_with_low_above_high_is_refused():
    frame = np.zeros((6, 8, 3), np.float32)
    stochastic_shift = transforms.get("stochastic_shift")
    with pytest.raises(PluginError, match=r"^transform 'stochastic_shift' \(built-in\) at frame 7: "
                                          r"low: must be <= high, got low=3, high=1$"):
        stochastic_shift(frame, context(7), low=3, high=1)
    assert stochastic_shift(frame, context(7), low=1, high=1).shape == frame.shape


def test_a_direct_call_outside_a_declared_range_is_refused():
    with pytest.raises(PluginError, match=r"at frame 2: factor: must be >= 0.001 and <= 1000, got -0.5$"):
        transforms.get("zoom")(np.zeros((6, 8, 3), np.float32), context(2), factor=-0.5)


def test_a_chain_built_in_python_checks_each_frame_it_runs():
    chain = build_chain([{"stochastic_shift": {"low": "t - 3", "high": 1}}])  # no frame count
    frame = np.zeros((6, 8, 3), np.float32)
    assert chain.apply(frame, context(4)).shape == frame.shape  # low 1 <= high 1
    with pytest.raises(PluginError, match=r"at frame 5: low: must be <= high, got low=2, high=1$"):
        chain.apply(frame, context(5))


def test_an_int_range_is_checked_on_the_rounded_value_of_each_frame():
    chain = build_chain([{"roll": {"group": "2 - t / 4"}}])
    frame = np.zeros((6, 8, 3), np.float32)
    chain.apply(frame, context(2))  # 1.5 rounds to 2
    with pytest.raises(PluginError, match=r"at frame 6: group: must be >= 1, got 0$"):
        chain.apply(frame, context(6))  # 0.5 rounds to 0


def test_constants_are_still_refused_when_the_chain_is_built():
    with pytest.raises(ConfigError, match=r"^transforms\[0\]\.sine_shift: period: must not be 0 "
                                          r"\(got 0; .*\)$"):
        build_chain([{"sine_shift": {"period": 0}}])


def test_a_remedy_names_its_facts_in_every_front_end_even_beside_braces():
    from animator.settings.errors import TransformValueError, word
    from animator.sweep.model import Outcome

    error = TransformValueError("bad", remedy="shorten_or_force", facts={"frames": 12})
    assert str(error) == ("bad: make the video of them with frames=12 and resume=True, or change the "
                          "value and pass force=True to start over")
    advice = {"shorten_or_force": ": animator render 'a{b}.yaml' --resume --set frames={frames}"}
    assert error.worded(advice) == "bad: animator render 'a{b}.yaml' --resume --set frames=12"
    assert word("bad", None, advice) == "bad"
    outcome = Outcome("v1", "failed", message="bad", remedy="shorten_or_force", facts={"frames": 12})
    assert outcome.worded() == str(error)  # a sweep's failed variant words it alike
