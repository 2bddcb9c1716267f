"""Measure a render's long-run quality from its frames folder: drift, sharpness, clipping, flicker.

    python scripts/quality.py out/zoom.mp4.frames                 # summary
    python scripts/quality.py out/zoom.mp4.frames --csv q.csv     # and every frame's figures
    python scripts/quality.py DIR --transforms "[{zoom: {factor: 1.03}}]"

Per frame i (PNG frames in name order, frame 0 the reference):
- drift: how far the colours moved from frame 0's, the largest per-channel change of mean or
  standard deviation, in % of 255;
- sharpness: the standard deviation of the Laplacian of the grey image (grey levels), and its
  ratio to frame 0's;
- clipped: the share of pixels with a channel at 0 or 255 (ringing and blown-out colour);
- unexplained: the mean absolute difference, in grey levels, between frame i and frame i-1 moved
  by the render's transforms (read from the folder's render.json, or given with --transforms): the
  change that the motion does not explain (what the dream adds, and flicker).

With --novelty, whether a long zoom keeps finding new structure, frame n against frame n-LAG
(--lag, 30 by default):
- warped: the mean absolute difference between frame n and frame n-LAG moved LAG times by the
  render's transforms, over frame n's standard deviation (0: the motion explains everything);
- gram: the distance between the Gram matrices of a fixed layer (the bundled mobilenet_v2's
  block_6_expand_relu) at frames n and n-LAG, relative to their size, against a floor: the same
  distance between frame 0 and its own mirror image (the same picture rearranged, nothing new);
- the zoom "settles" at the first frame from which every frame repeats: its texture statistics
  are under the floor (gram < floor), or the motion explains it (warped < 0.05).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from transforms.filters import LUMA as _LUMA

LUMA = np.array(_LUMA)  # the grey the edge transforms use (BT.601)


@dataclass(frozen=True)
class FrameQuality:
    index: int
    drift: float  # % of 255
    sharpness: float  # grey levels
    clipped: float  # share of pixels, 0..1
    unexplained: float  # grey levels; NaN for frame 0


def sharpness(frame: np.ndarray) -> float:
    """Standard deviation of the Laplacian of the frame's grey (BT.601 luma), in grey levels."""
    from scipy import ndimage

    return float(ndimage.laplace(frame @ LUMA).std())


def clipped_share(frame: np.ndarray) -> float:
    """Share of pixels with any channel at 0 or 255."""
    return float(np.mean(np.any((frame <= 0) | (frame >= 255), axis=2)))


def drift(frame: np.ndarray, first: np.ndarray) -> float:
    """Largest per-channel change of the mean or the spread from `first`'s, in % of 255."""
    moved = [np.abs(f(frame, axis=(0, 1)) - f(first, axis=(0, 1))) for f in (np.mean, np.std)]
    return float(np.max(moved) / 255 * 100)


def read(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float64)


def motion(frames_dir: Path, transforms: str | None):
    """The render's transform chain (a function of frame, index), or None when unknown."""
    import yaml

    if transforms is not None:
        spec = yaml.safe_load(transforms)
    elif (frames_dir / "render.json").exists():
        spec = json.loads((frames_dir / "render.json").read_text())["settings"].get("transforms")
    else:
        return None
    if not spec:
        return None  # nothing moves: frame i-1 itself is what frame i is expected to be
    from transforms import Context, build_chain

    chain = build_chain(spec)
    rng = np.random.default_rng(0)

    def move(frame: np.ndarray, index: int) -> np.ndarray:
        ctx = Context(index, index + 1, (frame.shape[1], frame.shape[0]), rng)
        return np.asarray(chain.apply(frame.astype(np.float32), ctx), dtype=np.float64)

    return move


def measure(frames_dir: Path, transforms: str | None = None, count: int | None = None):
    """FrameQuality for the first `count` (default: every) PNG frame of `frames_dir`, in order."""
    paths = sorted(frames_dir.glob("*.png"))[:count]
    if not paths:
        raise SystemExit(f"quality.py: no PNG frames in {frames_dir}")
    move = motion(frames_dir, transforms)
    first = previous = read(paths[0])
    for index, path in enumerate(paths):
        frame = first if index == 0 else read(path)
        unexplained = float("nan")
        if index > 0:
            expected = move(previous, index - 1) if move else previous
            unexplained = float(np.mean(np.abs((frame - expected) @ LUMA)))
        yield FrameQuality(index, drift(frame, first), sharpness(frame), clipped_share(frame),
                           unexplained)
        previous = frame


WARP_FLOOR = 0.05  # warped difference under 5% of the frame's std: the motion explains the frame
GRAM_LAYER = ("mobilenet_v2", "block_6_expand_relu")


@dataclass(frozen=True)
class Novelty:
    index: int  # frame n, compared with frame n - lag
    warped: float  # mean |frame n - moved frame n-lag| / std(frame n)
    gram: float  # relative Gram distance between frames n and n-lag
    floor: float  # relative Gram distance between frame 0 and its mirror image

    @property
    def repeats(self) -> bool:
        """Nothing new: the texture statistics repeat, or the motion explains the frame."""
        return self.gram < self.floor or self.warped < WARP_FLOOR


def gram_features():
    """A function from an H×W×3 frame (0..255) to its Gram matrix at GRAM_LAYER (C×C, per cell)."""
    from animator.engine import models

    model_name, layer = GRAM_LAYER
    features = models.feature_model(model_name, models.build_backbone(model_name, "bundled"), [layer])

    def gram(frame: np.ndarray) -> np.ndarray:
        maps = np.asarray(features(frame[None].astype(np.float32))[0], dtype=np.float64)[0]
        flat = maps.reshape(-1, maps.shape[-1])
        return flat.T @ flat / len(flat)

    return gram


def gram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frobenius distance of two Gram matrices over their mean Frobenius norm (0..2)."""
    scale = (np.linalg.norm(a) + np.linalg.norm(b)) / 2
    return float(np.linalg.norm(a - b) / scale) if scale > 0 else 0.0


def warped_difference(frame: np.ndarray, earlier: np.ndarray, move, first_index: int, lag: int) -> float:
    """Mean |frame - earlier moved `lag` times by `move`| over frame's std (grey levels, luma)."""
    expected = earlier
    for index in range(first_index, first_index + lag):
        expected = move(expected, index) if move else expected
    spread = float((frame @ LUMA).std())
    return float(np.mean(np.abs((frame - expected) @ LUMA))) / spread if spread > 0 else 0.0


def novelty(frames, move=None, lag: int = 30, gram=None, every: int = 1):
    """Novelty of every `every`-th frame n >= lag of `frames` (H×W×3 arrays, 0..255, in order)
    against frame n - lag; `move(frame, index)` is the render's motion from frame index to
    index+1 (None: no motion); `gram` maps a frame to a Gram matrix (default: `gram_features()`)."""
    from collections import deque

    gram = gram or gram_features()
    earlier: deque = deque(maxlen=lag)
    floor = None
    for index, frame in enumerate(frames):
        used = index % every == 0 or (index + lag) % every == 0
        matrix = gram(frame) if used or floor is None else None
        if floor is None:
            floor = gram_distance(matrix, gram(frame[:, ::-1]))
        if len(earlier) == lag and index % every == 0:
            old_frame, old_matrix = earlier[0]
            yield Novelty(index, warped_difference(frame, old_frame, move, index - lag, lag),
                          gram_distance(matrix, old_matrix), floor)
        earlier.append((frame, matrix))


def settle_frame(rows: list[Novelty]) -> int | None:
    """The first frame from which every frame repeats (Novelty.repeats), or None if the last
    frame is new."""
    settled = None
    for row in rows:
        if not row.repeats:
            settled = None
        elif settled is None:
            settled = row.index
    return settled


def novelty_summary(rows: list[Novelty], lag: int = 30) -> list[str]:
    if not rows:
        return ["novelty: fewer frames than the lag"]
    settled = settle_frame(rows)
    mean = lambda values: float(np.mean(list(values)))  # noqa: E731
    half = rows[len(rows) // 2:]
    return [
        f"novelty (lag {lag}): warped difference {mean(r.warped for r in rows):.3f} of the "
        f"std (second half {mean(r.warped for r in half):.3f}); Gram distance "
        f"{mean(r.gram for r in rows):.3f} (second half {mean(r.gram for r in half):.3f}), "
        f"mirror floor {rows[0].floor:.3f}",
        f"settles: {'never' if settled is None else f'at frame {settled}'} "
        f"({sum(r.repeats for r in rows)} of {len(rows)} frames repeat)",
    ]


def summary(rows: list[FrameQuality], tail: int) -> list[str]:
    last = rows[-tail:]
    base = rows[0].sharpness
    mean = lambda values: float(np.nanmean(list(values)))  # noqa: E731
    kept = mean(r.sharpness for r in last)
    ratio = f" ({kept / base:.0%} of frame 0)" if base > 0 else ""
    return [
        f"frames: {len(rows)}",
        f"sharpness: frame 0 {base:.2f}; last {len(last)} frames {kept:.2f}{ratio}",
        f"colour drift: last {len(last)} frames {mean(r.drift for r in last):.2f}%, "
        f"largest {max(r.drift for r in rows):.2f}%",
        f"clipped pixels: frame 0 {rows[0].clipped:.2%}, last {len(last)} frames "
        f"{mean(r.clipped for r in last):.2%}",
        f"unexplained change: {mean(r.unexplained for r in rows[1:]):.2f} grey levels per frame "
        f"(last {len(last)}: {mean(r.unexplained for r in last):.2f})",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("frames_dir", type=Path, help="a render's frames folder (PNG frames)")
    parser.add_argument("--transforms", help="the motion between frames, as a YAML transforms "
                        "list (default: the folder's render.json)")
    parser.add_argument("--tail", type=int, default=30, help="frames at the end to summarise")
    parser.add_argument("--frames", type=int, help="measure only the first N frames")
    parser.add_argument("--csv", type=Path, help="write every frame's figures to this CSV file")
    parser.add_argument("--novelty", action="store_true",
                        help="also measure novelty: warped difference and Gram distance to frame n-LAG")
    parser.add_argument("--lag", type=int, default=30, help="frames between compared frames (novelty)")
    parser.add_argument("--every", type=int, default=1, help="measure novelty at every Nth frame only")
    args = parser.parse_args(argv)
    if not args.frames_dir.is_dir():
        parser.error(f"{args.frames_dir} is not a folder")
    rows = list(measure(args.frames_dir, args.transforms, args.frames))
    if args.csv:
        with args.csv.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(asdict(rows[0])))
            writer.writeheader()
            writer.writerows(asdict(row) for row in rows)
    print("\n".join(summary(rows, max(1, args.tail))))
    if args.novelty:
        paths = sorted(args.frames_dir.glob("*.png"))[: args.frames]
        move = motion(args.frames_dir, args.transforms)
        found = list(novelty((read(path) for path in paths), move, max(1, args.lag),
                             every=max(1, args.every)))
        print("\n".join(novelty_summary(found, args.lag)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
