"""A user's mistake is one line and exit 2, found where the value is declared, before any work.

Grouped by family: numbers out of what the render can carry out (each checked at load against
its declared range, `--dry-run` included), files that are damaged or hostile, plugins that return
or check nonsense, paths the system cannot look up, and messages that name the real problem.
"""

from __future__ import annotations

import io as stdio
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import with_changes
from PIL import Image
from test_robustness import ONE_FRAME, TINY, fails, run, write_config

import transforms
from animator.cli import main
from animator.media import images
from animator.settings.errors import ConfigError, InputError, PluginError
from transforms.context import Context

LONG = "a" * 300  # past any file system's 255-byte name
HUGE_INT = 10**400  # a YAML integer past the largest float


def dry_run_fails(capsys, tmp_path, data, *says) -> str:
    return fails(capsys, 2, "render", write_config(tmp_path, data), "--dry-run", says=says)


# --- numbers: each declared range is what the render can carry out ----------------------------


NUMBER_CASES = {  # each one an internal error, or accepted, before its range was declared
    "negative-seed": ({"seed": -1}, "seed: must be >= 0"),
    "huge-seed": ({"seed": 2**64}, "seed: must be >= 0 and <= 4,294,967,295"),
    "negative-noise-seed": ({"input": {"noise": {"size": [64, 64], "seed": -1}}},
                            "input.noise.seed: input should be greater than or equal to 0"),
    "huge-jitter": ({"dream": {**TINY["dream"], "jitter": 10**22}},
                    "dream.jitter: must be >= 0 and <= 16,384"),
    "huge-octave-scale": ({"dream": {**TINY["dream"], "octaves": 3, "octave_scale": 1e300}},
                          "dream.octave_scale: must be > 1 and <= 10"),
    "huge-octaves": ({"dream": {**TINY["dream"], "octaves": 10**6}}, "dream.octaves: must be >= 1 and <= 64"),
    "huge-steps": ({"dream": {**TINY["dream"], "steps": 10**12}}, "dream.steps: must be >= 0 and <= 100,000"),
    "integer-past-float": ({"dream": {**TINY["dream"], "step_size": HUGE_INT}},
                           "dream.step_size: expected a finite number"),
    "integer-past-float-in-expression": ({"dream": {**TINY["dream"], "step_size": f"{HUGE_INT} * 0"}},
                                         "is past the largest number (1e308)"),
    "integer-past-float-in-keyframes": ({"dream": {**TINY["dream"], "step_size": {0: 1, 5: HUGE_INT}}},
                                        "step_size[5]: expected a finite number"),
    "tiny-fps": ({"fps": 1e-300}, "fps: must be >= 0.01 and <= 240, got 1e-300"),
    "slow-gif-fps": ({"fps": 0.001}, "fps: must be >= 0.01"),
    "nan-fps": ({"fps": float("nan")}, "fps: input should be a finite number"),
    "nan-layer-weight": ({"dream": {**TINY["dream"], "layers": {"block3_conv3": float("nan")}}},
                         "dream.layers.block3_conv3: expected a finite number, got nan"),
    "nan-tv-weight": ({"dream": {**TINY["dream"], "objective": [{"tv": float("nan")}]}},
                      "dream.objective[0].tv: expected a finite number, got nan"),
    "vanishing-zoom": ({"transforms": [{"zoom": {"factor": 1e-308}}]},
                       "transforms[0].zoom.factor: must be >= 0.001 and <= 1000, got 1e-308"),
    "singular-affine": ({"transforms": [{"affine": {"matrix": [[1, 2, 0], [2, 4, 0]]}}]},
                        "transforms[0].affine: matrix: [[1.0, 2.0, 0.0], [2.0, 4.0, 0.0]] cannot be "
                        "inverted"),
    "affine-singular-later": ({"transforms": [{"affine": {"matrix": [[1, 0, 0], [0, "t - 3", 0]]}}]},
                              "cannot be inverted", "at frame 3"),
}


@pytest.mark.parametrize("case", list(NUMBER_CASES))
def test_a_number_the_render_cannot_carry_out_is_refused_at_load(case, tmp_path, capsys):
    changes, *says = NUMBER_CASES[case]
    dry_run_fails(capsys, tmp_path, {**TINY, **changes}, *says)


def test_octave_advice_names_only_fixes_a_config_allows(tmp_path, capsys):
    line = dry_run_fails(capsys, tmp_path, with_changes(TINY, dream__octaves=3, dream__octave_scale=10))
    assert "use octaves <= 1 or a size whose short side is at least 3200 px or octave_scale <= 1.41" in line
    line = dry_run_fails(capsys, tmp_path, with_changes(TINY, dream__octaves=64))
    assert "px" not in line.rpartition(":")[2], line  # no size past 16384 px is offered


def test_command_line_numbers_are_checked_against_their_ranges(tmp_path, capsys):
    image = tmp_path / "in.png"
    Image.new("RGB", (64, 64)).save(image)
    frames = tmp_path / "frames"
    frames.mkdir()
    Image.new("RGB", (8, 8)).save(frames / "00000.png")
    for argv, says in ((["dream", image, "-o", tmp_path / "o.png", "--seed", "-1"], "--seed: must be >= 0"),
                       (["assemble", frames, "-o", tmp_path / "a.gif", "--fps", "0.001"],
                        "--fps: must be >= 0.01")):
        with pytest.raises(SystemExit) as exited:  # argparse's own exit, as for any bad option
            main([str(arg) for arg in argv])
        err = capsys.readouterr().err
        assert exited.value.code == 2 and says in err and len(err.splitlines()) == 1, err


# --- files: damaged or hostile images, as input or as a frame -----------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width: int, height: int, extra: bytes = b"", idat: bytes | None = None) -> bytes:
    raw = b"".join(b"\0" + b"\x80" * (3 * width) for _ in range(height)) if idat is None else b""
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + extra + _chunk(b"IDAT", idat if idat is not None else zlib.compress(raw))
            + _chunk(b"IEND", b""))


def huge_text_png() -> bytes:
    """A 16×16 PNG whose text chunk inflates to 20 MB, past Pillow's limit."""
    return _png(16, 16, _chunk(b"zTXt", b"k\0\0" + zlib.compress(b"a" * (20 << 20))))


def bomb_png() -> bytes:
    """A PNG whose header claims 30000×30000 pixels, past Pillow's decompression bomb limit."""
    return _png(30000, 30000, idat=zlib.compress(b"\0" * 1000))


def corrupt_tiff(position: int) -> bytes:
    """An 8×8 TIFF with byte `position` set to 7: 72 makes Pillow raise TypeError, 12 ValueError."""
    buffer = stdio.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buffer, format="TIFF")
    data = bytearray(buffer.getvalue())
    data[position] = 7
    return bytes(data)


HOSTILE = {"huge-text.png": huge_text_png, "bomb.png": bomb_png,
           "corrupt-type.tif": lambda: corrupt_tiff(72), "corrupt-value.tif": lambda: corrupt_tiff(12)}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_image_as_input_is_one_line(name, tmp_path):
    path = tmp_path / name
    path.write_bytes(HOSTILE[name]())
    with pytest.raises(InputError, match=f"input image '.*{name}' is (not a readable image|too large)"):
        images.read_image(path, max_pixels=10**12)


@pytest.mark.parametrize("name", ["huge-text.png", "bomb.png", "corrupt-type.tif"])
def test_a_hostile_frame_is_one_line_at_assembly(name, tmp_path, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / f"00000{Path(name).suffix}").write_bytes(HOSTILE[name]())
    fails(capsys, 2, "assemble", frames, "-o", tmp_path / "a.gif",
          says=("frame '", "is not a readable image", "remove it or render it again"))


def test_a_hostile_input_is_one_line_from_the_command(tmp_path, capsys):
    path = tmp_path / "in.png"
    path.write_bytes(huge_text_png())
    fails(capsys, 2, "dream", path, "-o", tmp_path / "o.png",
          says=("not a readable image", "MAX_TEXT_CHUNK"))


def test_a_32_bit_integer_tiff_is_scaled_by_its_own_depth(tmp_path):
    path = tmp_path / "i32.tif"
    Image.fromarray(np.full((8, 8), 2**30, np.int32), mode="I").save(path)  # half of int32's top
    loaded = images.read_image(path)
    assert loaded.pixels[0, 0, 0] == pytest.approx(127.5, abs=0.1)
    assert loaded.notes == ["32-bit image: scaled to 8 bits"]
    sixteen = tmp_path / "u16.png"
    Image.fromarray(np.full((8, 8), 32768, np.uint16)).save(sixteen)
    assert images.read_image(sixteen).pixels[0, 0, 0] == pytest.approx(127.5, abs=0.1)


def test_a_nan_in_the_input_is_blamed_on_the_input(tmp_path, capsys):
    path = tmp_path / "nan.tif"
    Image.fromarray(np.full((64, 64), np.nan, np.float32), mode="F").save(path)
    line = fails(capsys, 2, "dream", path, "-o", tmp_path / "o.png", says=("holds NaN", "nan.tif"))
    assert "frame -1" not in line


# --- plugins that return or check nonsense -----------------------------------------------------


def _returns(value):
    def transform(frame, ctx):
        return value(frame)
    return transform


class _ShapeOfFive:
    shape, dtype = 5, "float32"


RETURNS = {"object-array": lambda f: np.empty(f.shape, object),
           "string-array": lambda f: np.full(f.shape, "a"), "shape-not-a-shape": lambda f: _ShapeOfFive()}


@pytest.mark.parametrize("case", list(RETURNS))
def test_a_plugin_returning_nonsense_is_named(case):
    with transforms.isolated():
        transforms.register("odd", numpy=True)(_returns(RETURNS[case]))
        chain = transforms.build_chain(["odd"])
        with pytest.raises(PluginError, match=r"'odd' .* at frame 2 returned .*expected (an|a float) array"):
            chain.apply(np.zeros((8, 8, 3), np.float32),
                        Context(index=2, total=4, size=(8, 8), rng=np.random.default_rng(0)))


def test_a_plugin_check_that_raises_is_the_plugin_error(tmp_path, capsys):
    def check(values):
        return 1 / 0

    with transforms.isolated():
        transforms.register("checked", check=check)(lambda frame, ctx, amount=1.0: frame)
        with pytest.raises(ConfigError, match=r"transforms\[0\]\.checked: its check failed: "
                                              r"ZeroDivisionError: division by zero"):
            transforms.build_chain([{"checked": {"amount": 2.0}}])


def test_a_built_in_failing_at_render_time_does_not_advise_resume(tmp_path, capsys, monkeypatch):
    import transforms.geometric

    def broken(*args, **kwargs):
        raise ValueError("cannot warp")

    monkeypatch.setattr(transforms.geometric, "warp", broken)
    config = write_config(tmp_path, {**ONE_FRAME, "frames": 2, "transforms": [{"zoom": {"factor": 1.05}}]})
    line = fails(capsys, 2, "render", config, says=("transform 'zoom' (built-in) at frame 0", "--force"))
    assert "fix the transform" not in line and "then continue" not in line, line


# --- paths the system cannot look up -----------------------------------------------------------


PATH_CASES = {"input": {"input": f"{LONG}.png"}, "plugin": {"plugins": [f"{LONG}.py"]},
              "transform-file": {"transforms": [f"{LONG}.py:glow"]},
              "output": {"output": {"path": f"{LONG}.gif"}}, "model": {"dream": {"model": f"{LONG}.keras"}},
              "video": {"input": {"video": f"{LONG}.mp4"}}}


@pytest.mark.parametrize("case", list(PATH_CASES))
def test_a_file_name_too_long_is_one_line_naming_the_key(case, tmp_path, capsys):
    key = {"input": "input", "plugin": "plugins[0]", "transform-file": "transforms[0]",
           "output": "output.path", "model": "dream.model", "video": "input.video"}[case]
    dry_run_fails(capsys, tmp_path, {**TINY, **PATH_CASES[case]}, f"{key}: cannot use the path",
                  "File name too long")


def test_a_file_name_too_long_on_the_command_line(tmp_path, capsys):
    image = tmp_path / "in.png"
    Image.new("RGB", (64, 64)).save(image)
    too_long = ("File name too long",)
    fails(capsys, 2, "dream", image, "-o", tmp_path / f"{LONG}.png", says=too_long)
    fails(capsys, 2, "dream", tmp_path / f"{LONG}.png", "-o", tmp_path / "o.png", says=too_long)
    fails(capsys, 2, "assemble", tmp_path / LONG, "-o", tmp_path / "o.gif", says=too_long)
    fails(capsys, 2, "render", tmp_path / f"{LONG}.yaml", says=too_long)


def test_an_output_name_that_is_no_utf8_renders(tmp_path, capsys):
    output = tmp_path / "o\udcff.gif"  # the byte 0xff, as Python reads it from a Linux file name
    config = write_config(tmp_path, ONE_FRAME)
    status, err = run(capsys, "render", config, "-o", output)
    assert status == 0, err
    assert output.is_file()
    settings = yaml.safe_load((tmp_path / "o\udcff.gif.yaml").read_text(errors="surrogateescape"))
    assert settings["frames"] == 1


# --- messages that name the real problem --------------------------------------------------------


def test_a_bad_clip_start_names_only_the_clip(tmp_path, capsys):
    line = dry_run_fails(capsys, tmp_path, {**TINY, "input": {"video": "clip.mp4", "start": -1}},
                         "input.start: input should be greater than or equal to 0, got -1")
    assert "input.noise" not in line and "valid string" not in line and "unknown key" not in line, line


def test_an_infinite_clip_end_is_the_config_not_the_file(tmp_path, capsys):
    line = dry_run_fails(capsys, tmp_path, {**TINY, "input": {"video": "clip.mp4", "end": float("inf")}},
                         "input.end: input should be a finite number, got inf")
    assert "decoded" not in line and "input.noise" not in line, line


def test_an_image_suffix_that_cannot_hold_rgb_is_refused_before_the_dream(tmp_path, capsys, monkeypatch):
    import animator.engine.dream

    def no_dream(*args, **kwargs):
        raise AssertionError("the dream ran")

    monkeypatch.setattr(animator.engine.dream, "Dreamer", no_dream)
    image = tmp_path / "in.png"
    Image.new("RGB", (64, 64)).save(image)
    line = fails(capsys, 2, "dream", image, "-o", tmp_path / "x.palm",
                 says=("cannot write", "cannot hold a colour image", "use .png or .jpg"))
    assert "unknown" not in line
    fails(capsys, 2, "dream", image, "-o", tmp_path / "x.xbm", says=("cannot hold a colour image",))
