"""dream.cadence: which frames are dreamed, the exact pixels of the frames between, resume at any
frame, no pulse at the dreamed frames, the inverses of the transforms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import with_changes
from PIL import Image

from animator import config as config_module
from animator.media import images
from animator.renderer.cadence import Dreams, Span, dreamed_frames
from animator.renderer.loop import run
from animator.renderer.output import describe
from animator.settings.errors import ConfigError
from transforms import Context, build_chain

SIDE = 33  # odd: the zoom's centre is pixel 16, so a zoom of 3 samples no half pixel (no ties)
ZOOM = {"zoom": {"factor": 3.0, "interpolation": "nearest", "fill": "nearest"}}
TINY = {
    "input": {"noise": {"size": [SIDE, SIDE], "seed": 3}},
    "frames": 7,
    "seed": 5,
    "dream": {"octaves": 1, "steps": 1, "cadence": 3},
    "transforms": [ZOOM],
    "color": {"coherence": "none"},  # the hand-made frames below have no colour matching
    "output": {"format": "frames", "checkpoint_every": 1},
}


class Dreamer:
    """A tiny model that dreams exactly: every pixel moves by one draw of the generator, wrapping
    at 256, so each dream is an integer frame and the draws show whether the generator replays."""

    def __init__(self, **kwargs) -> None:
        self.dreamed: list[int] = []

    def dream_frame(self, frame, settings, rng):
        from keras import ops

        self.dreamed.append(settings.frame)
        return ops.mod(ops.round(frame) + float(rng.integers(1, 200)), 256.0), None


def tiny_config(tmp_path: Path, name: str = "out", **changes):
    data = with_changes({**TINY, "output": {**TINY["output"], "path": str(tmp_path / name)}},
                        **changes)
    return config_module.from_mapping(data, tmp_path, source=str(tmp_path / "tiny.yaml"))


def render_frames(config, dreamer=None, resume: bool = False, until: int | None = None):
    """Run the frame loop with the tiny model; stop once frame `until` is yielded."""
    dreamer = dreamer or Dreamer()
    frames = run(config, resume=resume, dreamer=lambda **kwargs: dreamer)
    for made in frames:
        if made.index == until:
            frames.close()
            break
    return dreamer


def pngs(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)).astype(np.float64) for p in sorted(folder.glob("[0-9]*.png"))]


def test_the_dreamed_frames_follow_the_cadence_and_end_on_the_last_frame(tmp_path):
    assert list(dreamed_frames(tiny_config(tmp_path, frames=10))) == [0, 3, 6, 9]
    assert list(dreamed_frames(tiny_config(tmp_path, frames=8))) == [0, 3, 6, 7]
    assert list(dreamed_frames(tiny_config(tmp_path, frames=1))) == [0]
    scheduled = tiny_config(tmp_path, frames=12, dream__cadence="1 + t / 3")
    assert list(dreamed_frames(scheduled)) == [0, 1, 2, 4, 6, 9, 11]  # 1 + 4/3 -> 2; 1 + 9/3 = 4


def test_the_span_of_a_frame_names_the_dreams_around_it(tmp_path):
    dreams = Dreams(tiny_config(tmp_path, frames=8))
    assert [dreams.span(i) for i in (0, 1, 3, 5, 7)] == [
        Span(None, 0), Span(0, 3), Span(0, 3), Span(3, 6), Span(6, 7)]
    walked = Dreams(tiny_config(tmp_path, frames=12, dream__cadence="1 + t / 3"))
    assert [walked.span(i) for i in (5, 6, 10, 11)] == [Span(4, 6), Span(4, 6), Span(9, 11),
                                                       Span(9, 11)]


def test_cadence_is_checked_when_the_config_loads(tmp_path):
    with pytest.raises(ConfigError, match=r"dream.cadence: must be >= 1 and <= 30, got 0"):
        tiny_config(tmp_path, dream__cadence=0)
    with pytest.raises(ConfigError, match=r"dream.cadence: .*got 31 at frame 30"):
        tiny_config(tmp_path, frames=40, dream__cadence="1 + t")


def test_a_dry_run_counts_only_the_dreamed_frames(tmp_path):
    assert "cost: 3 gradient steps" in describe(tiny_config(tmp_path))  # frames 0, 3, 6
    assert "cost: 7 gradient steps" in describe(tiny_config(tmp_path, dream__cadence=1))


# --- the frames between, pixel by pixel ---------------------------------------------------------


def zoomed(frame: np.ndarray, factor: float) -> np.ndarray:
    """A nearest-neighbour zoom about the centre pixel, by hand: output x samples the input at
    16 + (x - 16) / factor, rounded, clamped to the frame (fill: nearest)."""
    centre = (SIDE - 1) // 2
    index = np.clip(np.rint(centre + (np.arange(SIDE) - centre) / factor), 0, SIDE - 1).astype(int)
    return frame[index][:, index]


def test_the_frames_between_cross_fade_the_dreams_carried_forward_and_back(tmp_path):
    config = tiny_config(tmp_path)
    dreamer = render_frames(config)
    assert dreamer.dreamed == [0, 3, 6]
    rng = np.random.default_rng(TINY["seed"])
    start = np.round(images.noise_image((SIDE, SIDE), 3).astype(np.float64))
    expected, dream = [], np.mod(start + rng.integers(1, 200), 256.0)
    expected.append(dream)
    for _ in (3, 6):  # the dreams of frames 3 and 6
        forward = [dream]
        for _ in range(3):
            forward.append(zoomed(forward[-1], 3.0))
        dream = np.mod(forward[3] + rng.integers(1, 200), 256.0)
        back = dream
        between = []
        for i in (2, 1):  # frames n-1, n-2: the dream carried back one zoom at a time
            back = zoomed(back, 1 / 3)
            between.append(forward[i] + i / 3 * (back - forward[i]))
        expected += [*between[::-1], dream]
    written = pngs(config.frames_dir)
    assert len(written) == 7
    for index, (got, want) in enumerate(zip(written, expected)):
        assert np.array_equal(got, np.clip(np.rint(want), 0, 255)), f"frame {index}"
    assert not np.array_equal(written[1], zoomed(written[0], 3.0))  # the next dream shows


def test_a_chain_without_an_inverse_carries_the_dream_forward_only(tmp_path):
    config = tiny_config(tmp_path, transforms=[ZOOM, {"blur": {"sigma": 0}}])
    render_frames(config)
    written = pngs(config.frames_dir)
    assert np.array_equal(written[1], zoomed(written[0], 3.0))
    assert np.array_equal(written[2], zoomed(written[1], 3.0))
    assert not np.array_equal(written[3], zoomed(written[2], 3.0))


# --- resume -------------------------------------------------------------------------------------


@pytest.mark.parametrize("chain", [[ZOOM], [ZOOM, {"stochastic_shift": {"low": -3, "high": 3}}]],
                         ids=["inverted", "forward only, random"])
@pytest.mark.parametrize("stop_after", [0, 1, 2, 4, 5])  # resumed at 1, 2, 3 (dreamed), 5, 6
def test_a_render_resumed_at_any_frame_gives_the_uninterrupted_frames(tmp_path, chain, stop_after):
    whole = tiny_config(tmp_path, "whole", transforms=chain, frames=8)
    render_frames(whole)
    parts = tiny_config(tmp_path, "parts", transforms=chain, frames=8)
    render_frames(parts, until=stop_after)
    assert len(pngs(parts.frames_dir)) == stop_after + 1
    resumed = render_frames(parts, resume=True)
    first_dream = [t for t in (0, 3, 6, 7) if t > stop_after][0]
    assert resumed.dreamed == [t for t in (3, 6, 7) if t >= first_dream]
    for index, (a, b) in enumerate(zip(pngs(whole.frames_dir), pngs(parts.frames_dir), strict=True)):
        assert np.array_equal(a, b), f"frame {index}"


# --- no pulse -----------------------------------------------------------------------------------


class Brightening:
    """A model whose dream adds 24 grey levels: the change a dream makes, the same every time."""

    def __init__(self, **kwargs) -> None:
        pass

    def dream_frame(self, frame, settings, rng):
        return frame + 24.0, None


def test_every_phase_of_the_cadence_changes_the_picture_alike(tmp_path):
    zoom = {"zoom": {"factor": 1.05}}
    config = tiny_config(tmp_path, transforms=[zoom], frames=10,
                         input={"noise": {"size": [48, 48], "seed": 1}})
    render_frames(config, Brightening())
    written = pngs(config.frames_dir)
    chain, rng = build_chain([zoom]), np.random.default_rng(0)
    changes = []
    for index in range(1, 10):
        carried = np.asarray(chain.apply(written[index - 1], Context(index - 1, 10, (48, 48), rng)))
        changes.append(np.abs(written[index] - carried)[8:-8, 8:-8].mean())
    by_phase = [np.mean(changes[phase::3]) for phase in range(3)]
    assert 7.0 < min(by_phase) and max(by_phase) < 9.0  # 24 / 3 a frame, whatever the phase


# --- the inverses -------------------------------------------------------------------------------


def smooth(side: int = 48) -> np.ndarray:
    y, x = np.mgrid[0:side, 0:side]
    return np.stack([128 + 90 * np.sin(x / 6), 128 + 90 * np.cos(y / 7),
                     128 + 50 * np.sin((x + y) / 9)], -1).astype(np.float32)


@pytest.mark.parametrize("spec", [
    {"zoom": {"factor": 1.1}}, {"stretch": {"vertical": 1.1, "horizontal": 0.95}},
    {"rotate": {"degrees": 4}}, {"translate": {"dx": 2.5, "dy": -1}},
    {"affine": {"matrix": [[1, 0.1, 0], [0, 1, 0]]}}])
def test_each_warp_is_undone_by_its_inverse(spec):
    chain = build_chain([spec])
    frame, ctx = smooth(), Context(2, 10, (48, 48), np.random.default_rng(0))
    back = np.asarray(chain.invert(chain.apply(frame, ctx), ctx))
    assert np.abs(back - frame)[10:-10, 10:-10].mean() < 0.2  # the edges are filled, not undone
    assert np.abs(np.asarray(chain.apply(frame, ctx)) - frame).mean() > 2.0


@pytest.mark.parametrize("spec", [{"roll": {"shift": "n / 5 - 3", "rounding": "truncate"}},
                                  {"roll": {"shift": "1.5 * n", "axis": "rows", "group": 3}},
                                  {"sine_shift": {"amplitude": 5.5, "speed": 0.3}}])
def test_rolls_are_undone_exactly(spec):
    chain = build_chain([{"zoom": {"factor": 1.0, "interpolation": "nearest"}}, spec])
    frame, ctx = smooth(), Context(3, 10, (48, 48), np.random.default_rng(0))
    assert np.array_equal(np.asarray(chain.invert(chain.apply(frame, ctx), ctx)), frame)


def test_a_plugin_may_declare_its_inverse_and_the_listing_says_which_can_be_inverted():
    import transforms

    with transforms.isolated() as registry:
        @registry.register("brighten", inverse=lambda frame, ctx, amount=10.0: frame - amount)
        def brighten(frame, ctx, amount: float = 10.0):
            return frame + amount

        chain = build_chain([{"brighten": {"amount": 4}}, "zoom"])
        assert chain.invertible and not build_chain(["brighten", "blur"]).invertible
        frame, ctx = smooth(), Context(0, 1, (48, 48), None)
        assert np.allclose(np.asarray(build_chain(["brighten"]).invert(frame + 10, ctx)), frame)
        lines = transforms.describe()
    after = {lines[i].split("(")[0]: lines[i + 2] for i in range(len(lines) - 2)
             if lines[i] and not lines[i].startswith(" ")}
    assert "invertible" in after["zoom"] and "invertible" in after["brighten"]
    assert "no inverse" in after["blur"] and "no inverse" in after["stochastic_shift"]


# --- a video ------------------------------------------------------------------------------------


class Negating(Dreamer):
    """The tiny model, but frame 2's dream is the negative of its start."""

    def dream_frame(self, frame, settings, rng):
        dreamed, losses = super().dream_frame(frame, settings, rng)
        return (255.0 - frame if settings.frame == 2 else dreamed), losses


def test_a_video_dreams_every_nth_frame_and_carries_the_dream_forward_between(tmp_path):
    from helpers import write_clip

    rng = np.random.default_rng(2)
    clip = write_clip(tmp_path / "clip.mp4", [rng.integers(0, 255, (SIDE, SIDE, 3), np.uint8)
                                              for _ in range(5)], 10)
    written = {}
    for name, model in (("plain", Dreamer()), ("negated", Negating())):
        data = {"input": {"video": str(clip)}, "seed": 1, "video": {"blend": 0.5},
                "dream": {"octaves": 1, "steps": 1, "cadence": 2}, "transforms": [ZOOM],
                "color": {"coherence": "none"},
                "output": {"path": str(tmp_path / name), "format": "frames"}}
        config = config_module.from_mapping(data, tmp_path)
        assert render_frames(config, model).dreamed == [0, 2, 4]
        written[name] = pngs(config.frames_dir)
    assert len(written["plain"]) == len(written["negated"]) == 5
    # the flow has no inverse: frame 1 is made from frame 0 alone, whatever frame 2's dream is
    assert np.array_equal(written["plain"][1], written["negated"][1])
    assert np.abs(written["plain"][2] - written["negated"][2]).mean() > 20


def test_a_sweep_varies_the_cadence_like_any_dream_setting(tmp_path):
    import yaml

    from animator import sweep

    base = {**TINY, "output": {"format": "frames"}}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({"base": base,
                                                         "grid": {"dream.cadence": [1, 3]}}))
    loaded = sweep.load(tmp_path / "sweep.yaml")
    assert [v.config.animation.dream.cadence for v in loaded.variants] == [1, 3]
    assert loaded.variants[0].id != loaded.variants[1].id
    assert [list(dreamed_frames(v.config)) for v in loaded.variants] == [list(range(7)), [0, 3, 6]]
