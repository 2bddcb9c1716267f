"""Render the README's gallery: small GIFs of the example configs into docs/gallery/.

    python scripts/gallery.py                 # the default selection
    python scripts/gallery.py zoom sobel      # just these
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ["zoom", "rotate_zoom", "column_roll", "sine_shift", "sobel", "pingpong"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=DEFAULT, help="config names in configs/")
    parser.add_argument("--size", type=int, default=96, help="square side in pixels")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "gallery")
    args = parser.parse_args(argv)

    from animator import config as config_module
    from animator.renderer.loop import render
    from animator.renderer.start import settings_path

    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.names:
        out = args.out / f"{name}.gif"
        overrides = [f"output.path={out}", f"size=[{args.size}, {args.size}]", "fit=crop",
                     "dream.octaves=2", "output.palette=shared"]
        config = config_module.load(ROOT / "configs" / f"{name}.yaml", overrides,
                                    frames=args.frames)
        result = render(config, force=True)
        shutil.rmtree(config.frames_dir)
        settings_path(config).unlink(missing_ok=True)  # the README shows the GIF alone
        print(f"{out.relative_to(ROOT)}: {result.frames} frames, {out.stat().st_size // 1024} KB, "
              f"{result.seconds:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
