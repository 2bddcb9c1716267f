"""Command-line conventions: options made from the declarations, --debug/--quiet anywhere,
`assemble` with every output option and a progress bar."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from animator import cli
from animator.cli import build_parser, main
from animator.settings import params

NOISE_CONFIG = "input: {noise: {size: [64, 64]}}\nframes: 4\ntransforms: [{zoom: {factor: 1.02}}]\n"


def declared_flags(*tables, skip=("path",)):
    return [(p, "--" + p.name.replace("_", "-")) for table in tables for p in table.values()
            if p.name not in skip]


def help_of(command: str) -> str:
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[command]
    return sub.format_help()


def entries(text: str) -> dict[str, str]:
    """Each option's entry in a --help text, by its first flag, whitespace collapsed."""
    blocks = re.split(r"\n  (?=-)", text.split("options:", 1)[1])
    return {block.split()[0].rstrip(","): " ".join(block.split()) for block in blocks if block.strip()}


@pytest.mark.parametrize(("param", "flag"), declared_flags(params.ANIMATION, params.DREAM, params.OUTPUT),
                         ids=lambda item: getattr(item, "name", item))
def test_render_help_shows_every_declared_option_with_its_default(param, flag):
    entry = entries(help_of("render"))[flag]
    shown = str(param.default).lower() if param.default in (None, True, False) else str(param.default)
    assert "default" in entry and (shown in entry or "default:" in param.help), entry
    assert param.help.split()[0] in entry


def test_assemble_and_dream_take_their_options_from_the_declarations():
    assemble, dream = help_of("assemble"), help_of("dream")
    for _, flag in declared_flags({"fps": params.ANIMATION["fps"]}, params.OUTPUT,
                                  skip=("path", "format", "checkpoint_every")):
        assert flag in assemble
    for _, flag in declared_flags(params.DREAM, skip=("cadence",)):
        assert flag in dream
    assert "--cadence" not in dream  # one image has no frames between dreams
    assert "--palette {shared,per_frame}" in assemble and "--dither, --no-dither" in assemble


@pytest.mark.parametrize("argv", [["--debug", "transforms"], ["transforms", "--debug"]])
def test_debug_works_before_and_after_the_subcommand(argv, monkeypatch):
    def broken(args):
        raise RuntimeError("internal")

    monkeypatch.setattr(cli, "cmd_transforms", broken)
    with pytest.raises(RuntimeError, match="internal"):  # --debug: the traceback, not one line
        main(argv)


def test_without_debug_an_internal_error_is_one_line(monkeypatch, capsys):
    monkeypatch.setattr(cli, "cmd_transforms", lambda args: 1 / 0)
    assert main(["transforms"]) == 1
    assert "internal error: ZeroDivisionError" in capsys.readouterr().err


def test_render_options_override_the_config(tmp_path, capsys):
    path = tmp_path / "anim.yaml"
    path.write_text(NOISE_CONFIG)
    assert main(["render", str(path), "--dry-run", "--steps", "1 + t", "--octaves", "2",
                 "--frames", "6", "--loop", "3", "--xla", "false"]) == 0
    out = capsys.readouterr().out
    assert '"steps": "1 + t"' in out and '"octaves": 2' in out and '"xla": false' in out
    assert '"loop": 3' in out.split("output options: ")[1].splitlines()[0]
    assert "frames: 6 at" in out


def test_a_render_option_out_of_range_is_a_config_error(tmp_path, capsys):
    path = tmp_path / "anim.yaml"
    path.write_text(NOISE_CONFIG)
    assert main(["render", str(path), "--dry-run", "--loop", "70000"]) == 2
    assert "output.loop: must be >= 0 and <= 65,535, got 70000" in capsys.readouterr().err


def gradient_frames(folder, count=4):
    folder.mkdir()
    y, x = np.mgrid[0:48, 0:48]
    for i in range(count):
        pixels = np.stack([x * 5 + i * 7, y * 5, (x + y) * 2 + i * 11], axis=-1) % 256
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i:05d}.png")
    return folder


def test_assemble_palette_and_dither_change_the_gif(tmp_path, capsys):
    frames = gradient_frames(tmp_path / "frames")
    plain, options = tmp_path / "plain.gif", tmp_path / "options.gif"
    assert main(["assemble", str(frames), "-o", str(plain)]) == 0
    assert main(["assemble", str(frames), "-o", str(options), "--palette", "per_frame", "--dither"]) == 0
    assert plain.read_bytes() != options.read_bytes()
    changed = []
    with Image.open(plain) as a, Image.open(options) as b:
        assert a.n_frames == b.n_frames == 4
        for i in range(4):
            a.seek(i)
            b.seek(i)
            source = np.asarray(Image.open(frames / f"{i:05d}.png"), dtype=float)
            pixels_a, pixels_b = (np.asarray(g.convert("RGB"), dtype=float) for g in (a, b))
            assert np.abs(pixels_b - source).mean() < 12  # still the same picture
            changed.append(np.abs(pixels_a - pixels_b).mean() > 0.5)
    assert all(changed)


def test_assemble_quiet_says_nothing_and_otherwise_reports(tmp_path, capsys):
    frames = gradient_frames(tmp_path / "frames", count=2)
    assert main(["assemble", str(frames), "-o", str(tmp_path / "a.gif"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["assemble", str(frames), "-o", str(tmp_path / "b.gif")]) == 0
    err = capsys.readouterr().err
    assert "assembling b.gif: 2/2" in err and "wrote" in err
