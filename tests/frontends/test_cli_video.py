"""`animator video`'s options come from the declarations of the config's video: section."""

from __future__ import annotations

import dataclasses
import re

import pytest

from animator import cli
from animator.cli import build_parser, main
from animator.settings import params

OPTIONS = [name for name in params.VIDEO if name != "carry_steps"]  # carry_steps: config only


def video_parser():
    return build_parser()._subparsers._group_actions[0].choices["video"]


def entries(text: str) -> dict[str, str]:
    """Each option's entry in a --help text, by its first flag, whitespace collapsed."""
    blocks = re.split(r"\n  (?=-)", text.split("options:", 1)[1])
    return {block.split()[0].rstrip(","): " ".join(block.split()) for block in blocks if block.strip()}


def test_video_help_shows_each_declared_option_with_its_help_type_and_choices(capsys):
    with pytest.raises(SystemExit):
        main(["video", "--help"])
    shown = entries(capsys.readouterr().out)
    actions = {action.dest: action for action in video_parser()._actions}
    for name in OPTIONS:
        param, flag = params.VIDEO[name], "--" + name
        assert " ".join(param.help.split()) in shown[flag]
        assert f"(default: {param.default})" in shown[flag]
        action = actions[f"video.{name}"]
        if param.choices:
            assert tuple(action.choices) == param.choices
            assert shown[flag].startswith(f"{flag} {{{','.join(param.choices)}}}")
        else:
            assert action.type("3") == param.annotation("3") and type(action.type("3")) is param.annotation
    assert "--carry-steps" not in shown


def test_a_changed_declaration_changes_the_option(monkeypatch):
    blend = dataclasses.replace(params.VIDEO["blend"], help="how much dream to carry", default=0.5)
    monkeypatch.setitem(params.VIDEO, "blend", blend)
    entry = entries(video_parser().format_help())["--blend"]
    assert entry == "--blend BLEND how much dream to carry (default: 0.5)"


def test_the_output_help_names_the_declared_formats_and_those_with_sound(monkeypatch):
    monkeypatch.setitem(params.FORMATS, ".mkv", "mkv")
    monkeypatch.setattr(params, "SOUND_FORMATS", (*params.SOUND_FORMATS, "mkv"))
    entry = entries(video_parser().format_help())["-o"]
    assert entry.endswith("output: .mp4 or .webm or .mkv (keep the sound), .gif, .webp, or a "
                          "folder for frames")


def test_the_options_become_the_configs_video_settings(monkeypatch, tmp_path):
    rendered = []
    monkeypatch.setattr(cli, "_render", lambda config, args, label: rendered.append(config) or 0)
    assert main(["video", "clip.mp4", "-o", str(tmp_path / "out.mp4"), "--blend", "0.25",
                 "--flow", "none", "--every", "3"]) == 0
    video = rendered[0].animation.video
    assert (video.blend, video.flow, video.every, video.carry_steps) == (
        0.25, "none", 3, params.VIDEO["carry_steps"].default)
    config = tmp_path / "dream.yaml"
    config.write_text("video: {blend: 0.1, every: 2}\n")
    assert main(["video", "clip.mp4", "-o", "out.mp4", "--config", str(config), "--every", "4"]) == 0
    assert (rendered[1].animation.video.blend, rendered[1].animation.video.every) == (0.1, 4)


def test_the_resume_command_keeps_every_video_option():
    args = build_parser().parse_args(["video", "c.mp4", "-o", "o.mp4", "--every", "3", "--flow", "none",
                                      "--end", "2"])
    assert cli._same_render(args) == "animator video c.mp4 -o o.mp4 --every 3 --flow none --end 2.0"


@pytest.mark.parametrize(("argv", "says"), [
    (["--blend", "2"], "animator: error: config 'clip.mp4': video.blend: must be >= 0 and <= 1, got 2.0"),
    (["--every", "0"], "animator: error: config 'clip.mp4': video.every: must be >= 1, got 0"),
])
def test_a_value_out_of_its_declared_range_is_one_line(argv, says, tmp_path, capsys):
    assert main(["video", "clip.mp4", "-o", str(tmp_path / "out.mp4"), *argv]) == 2
    assert capsys.readouterr().err == says + "\n"


@pytest.mark.parametrize(("argv", "says"), [
    (["--blend", "lots"], r"argument --blend: invalid float value: 'lots'"),
    # how argparse quotes the choices differs between Python versions
    (["--flow", "sideways"],
     r"argument --flow: invalid choice: 'sideways' \(choose from '?farneback'?, '?none'?\)"),
])
def test_a_value_of_the_wrong_type_is_refused_by_the_parser(argv, says, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["video", "clip.mp4", "-o", "out.mp4", *argv])
    err = capsys.readouterr().err.splitlines()
    assert caught.value.code == 2 and len(err) == 1, err  # one line, no usage block above it
    assert re.fullmatch(f"animator video: error: {says}: see `animator video --help`", err[0]), err


@pytest.mark.parametrize("argv", [
    ["render", "x.yaml", "--frames", "abc"],
    ["render"],  # the config is missing
    ["bogus"],  # no such command
])
def test_every_command_line_mistake_is_one_line(argv, capsys):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    err = capsys.readouterr().err.splitlines()
    assert caught.value.code == 2 and len(err) == 1 and err[0].endswith("--help`"), err
