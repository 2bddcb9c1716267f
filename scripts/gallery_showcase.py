"""Render the README's showcases: long 512×512 animations, saved as small animated WebPs.

    python scripts/gallery_showcase.py                      # every showcase into docs/gallery/
    python scripts/gallery_showcase.py zoom --frames 24     # a quick look at one
    python scripts/gallery_showcase.py --resume             # go on after an interruption
    python scripts/gallery_showcase.py --encode-only --fps 8   # the WebPs of the frames so far

Each showcase is an example config with overrides (below). The frames are rendered into
`out/showcase/<name>.frames/` (resumable: a 2-core CPU takes about 2 s per frame at this size), then
encoded as a lossy animated WebP sized for a README (`--quality`) by the same writer as
`output.format: webp` (ffmpeg's libwebp, one frame at a time).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# name: (config in configs/, overrides). Two octaves of 3 steps a frame: the dream builds up
# across frames anyway; the lower octave grows forms large enough to read at 512×512.
CHEAP = ["dream.octaves=2", "dream.octave_scale=1.5", "dream.steps=3", "dream.step_size=2.5"]
SHOWCASES = {
    # The endless zoom, resampled with the default (Lanczos) so it stays crisp.
    "zoom": ("zoom.yaml", [*CHEAP, "transforms=[{zoom: {factor: 1.03}}]"]),
    # The DeepDream notebook's chain: zoom, vertical stretch, column roll, colour edges.
    "notebook": ("notebook.yaml", CHEAP),
    # The zoom that keeps finding new forms: its dreamed layers take turns (configs/explore.yaml).
    "explore": ("explore.yaml", CHEAP),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"showcases to render (default: all of "
                        f"{', '.join(SHOWCASES)})")
    parser.add_argument("--size", type=int, default=512, help="square side in pixels")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--quality", type=float, default=4.0,
                        help="WebP quality 0..10, as output.quality (libwebp's 0..100 / 10)")
    parser.add_argument("--encode-only", action="store_true",
                        help="render nothing: encode the frames already rendered")
    parser.add_argument("--resume", action="store_true", help="go on from the frames on disk")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "gallery")
    parser.add_argument("--work", type=Path, default=ROOT / "out" / "showcase",
                        help="where the frames are rendered")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(SHOWCASES))
    if unknown:
        parser.error(f"unknown showcase {', '.join(unknown)}; choose from {', '.join(SHOWCASES)}")

    from animator import config as config_module
    from animator.media.video import assemble
    from animator.renderer.loop import render

    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.names or list(SHOWCASES):
        source, overrides = SHOWCASES[name]
        out = args.out / f"{name}.webp"
        overrides = [*overrides, f"output.path={args.work.resolve() / name}", "output.format=frames",
                     f"size=[{args.size}, {args.size}]", "fit=crop", f"fps={args.fps}"]
        config = config_module.load(ROOT / "configs" / source, overrides, frames=args.frames)
        if not args.encode_only:
            render(config, resume=args.resume, force=not args.resume)
        count = assemble(config.frames_dir, out, fps=args.fps, quality=args.quality, loop=0, format="webp")
        print(f"{out}: {count} frames at {args.fps} fps, {out.stat().st_size // 1024} KB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
