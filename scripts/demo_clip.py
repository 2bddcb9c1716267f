#!/usr/bin/env python
"""Make the demo clip of `configs/video.yaml`, and the README's before/after GIF of its dream.

The clip: a still photo (Chelsea the cat) with a patch of another (coffee) sliding right across
it, `speed` pixels a frame, and a 440 Hz tone as its sound: motion to follow, a still background
to show flicker, and a sound track to carry. Both photos ship with the project (configs/images).

    python scripts/demo_clip.py configs/clips/patch.mp4             # the clip (192x128, 2 s)
    python scripts/demo_clip.py --gif docs/video.gif IN.mp4 OUT.mp4   # input | dream, side by side
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

IMAGES = Path(__file__).resolve().parents[1] / "configs" / "images"
TONE_HZ = 440
SPEED = 2  # pixels a frame the patch moves: the clip's and the path mask's


def _patch_place(height: int) -> tuple[int, int, int]:
    """The patch's side, its top row and its first frame's left column: one place for the clip
    and for the mask of its path, so the two cannot drift apart."""
    side = max(8, height // 3)
    return side, (height - side) // 2, side // 4


def patch_frames(size: tuple[int, int], frames: int, speed: int) -> list[np.ndarray]:
    """`frames` uint8 RGB frames (`size` = width, height): a patch a third of the height high,
    starting at the left, moving right `speed` px a frame over a still background."""
    width, height = size
    side, top, start = _patch_place(height)
    background = np.asarray(Image.open(IMAGES / "chelsea.jpg").convert("RGB").resize(size))
    patch = np.asarray(Image.open(IMAGES / "coffee.jpg").convert("RGB").resize((side, side)))
    out = []
    for i in range(frames):
        frame = background.copy()
        left = min(width - side, start + speed * i)
        frame[top:top + side, left:left + side] = patch
        out.append(frame)
    return out


def patch_path(size: tuple[int, int], frames: int, speed: int) -> np.ndarray:
    """H×W bool: True where the patch passes at some frame (the rest of the frame stays still)."""
    width, height = size
    side, top, left = _patch_place(height)
    covered = np.zeros((height, width), bool)
    covered[top:top + side, left:min(width, left + speed * (frames - 1) + side)] = True
    return covered


def write_clip(path: Path, size=(192, 128), frames: int = 24, fps: float = 12, speed: int = SPEED,
               tone: bool = True) -> Path:
    """Encode the demo clip as an H.264 MP4 (nearly lossless: crf 10), with the tone if `tone`."""
    import imageio_ffmpeg

    path.parent.mkdir(parents=True, exist_ok=True)
    silent = path.with_name(path.stem + ".silent.mp4") if tone else path
    writer = imageio_ffmpeg.write_frames(str(silent), size, fps=fps, codec="libx264",
                                         pix_fmt_out="yuv420p", output_params=["-crf", "10"],
                                         macro_block_size=1, ffmpeg_log_level="error")
    writer.send(None)
    for frame in patch_frames(size, frames, speed):
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    if tone:
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(silent),
                        "-f", "lavfi", "-i", f"sine=frequency={TONE_HZ}:duration={frames / fps}",
                        "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(path)],
                       check=True)
        silent.unlink()
    return path


def before_after_gif(clip: Path, dreamed: Path, out: Path, fps: float, every: int = 2) -> Path:
    """A GIF of the input clip and its dream side by side, from the two videos; every `every`th
    frame at `fps / every`, to keep it small."""
    import imageio.v3 as iio

    from animator.media import video

    pairs = list(zip(iio.imiter(clip), iio.imiter(dreamed)))[::every]
    frames = [np.concatenate([a, b[:a.shape[0], :a.shape[1]]], axis=1) for a, b in pairs]
    folder = out.with_name(out.name + ".frames")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, frame in enumerate(frames):
        paths.append(folder / f"{i:05d}.png")
        Image.fromarray(frame).save(paths[-1])
    video.write_gif(paths, out, fps / every)
    for path in paths:
        path.unlink()
    folder.rmdir()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="OUT.mp4, or IN.mp4 DREAMED.mp4 with --gif")
    parser.add_argument("--gif", type=Path, help="write the before/after GIF here instead")
    parser.add_argument("--fps", type=float, default=12)
    args = parser.parse_args()
    if args.gif:
        print(before_after_gif(*args.paths, args.gif, args.fps))
    else:
        print(write_clip(args.paths[0], fps=args.fps))


if __name__ == "__main__":
    main()
